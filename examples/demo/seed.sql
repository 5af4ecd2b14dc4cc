-- Demo data for `hoop demo`: a tiny shop with personal data worth protecting.
-- Every email, card number and SSN here is fictitious (card numbers are Luhn-valid test numbers).

DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS customers;

CREATE TABLE customers (
  id          integer PRIMARY KEY,
  name        text NOT NULL,
  email       text NOT NULL,
  card_number text,
  ssn         text,
  tier        text NOT NULL DEFAULT 'standard',
  notes       text
);

CREATE TABLE orders (
  id          integer PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers(id),
  total       numeric(10,2) NOT NULL,
  status      text NOT NULL DEFAULT 'paid',
  created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO customers (id, name, email, card_number, ssn, tier, notes) VALUES
  (1, 'Ada Lovelace',     'ada@example.com',     '4111111111111111', '078-05-1120', 'gold',     'prefers email'),
  (2, 'Grace Hopper',     'grace@example.org',   '5500005555555559', '219-09-9999', 'standard', 'card on file 4012888888881881'),
  (3, 'Alan Turing',      'alan@example.net',    '340000000000009',  '457-55-5462', 'standard', NULL),
  (4, 'Katherine Johnson','katherine@example.com','6011000990139424', '323-45-6789', 'platinum', 'call 555-0100'),
  (5, 'Edsger Dijkstra',  'edsger@example.nl',   '3530111333300000', '512-34-5678', 'standard', NULL);

INSERT INTO orders (id, customer_id, total, status) VALUES
  (1, 1, 120.50, 'paid'),
  (2, 1,  35.00, 'shipped'),
  (3, 2, 990.00, 'paid'),
  (4, 3,  12.25, 'refunded'),
  (5, 4, 410.00, 'paid'),
  (6, 5,  77.70, 'shipped');
