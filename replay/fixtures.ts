// A candidate policy change used by the replay tests and the dry-run bench: on production, the
// reader and writer agents may no longer read the customers table (they used to get masked rows).
// Added to examples/policies it turns exactly those recorded reads from `mask` into `block`.

export const NO_CUSTOMER_READS = `package prod.db
rule no_customer_reads_for_agents {
  on postgres("prod-*")
  when groups ["data-reader", "data-writer"]
  match sql select on tables ["public.customers"]
  block "agents may not read customers"
}
`;
