export { createTokenVerifier, type VerifierConfig, type VerifierOptions } from './verifier.ts';
export { openDevIssuer, DEV_ISSUER, DEV_AUDIENCE, type DevIssuer, type MintOptions } from './dev-issuer.ts';
