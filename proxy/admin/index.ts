export { startAdminServer, type AdminServer, type AdminServerOptions, type HealthStatus } from './server.ts';
export { AdminClient, type AdminClientError } from './client.ts';
