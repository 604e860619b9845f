-- The example's warehouse: a schema of its own with two tables, as a product database or an
-- analytics pipeline would leave them. Idempotent: run it again to start over.
SET client_min_messages = warning;  -- no notice when there is no schema to drop yet
DROP SCHEMA IF EXISTS engine_example CASCADE;
CREATE SCHEMA engine_example;

CREATE TABLE engine_example.companies (
  id   integer PRIMARY KEY,
  name text NOT NULL
);

CREATE TABLE engine_example.users (
  id             bigint PRIMARY KEY,
  email          text NOT NULL,
  first_name     text,
  last_name      text,
  company_id     integer NOT NULL REFERENCES engine_example.companies (id),
  plan           text NOT NULL,
  orders         integer NOT NULL DEFAULT 0,
  lifetime_value numeric(12,2) NOT NULL DEFAULT 0,
  last_seen_at   timestamptz,
  active         boolean NOT NULL DEFAULT true
);

INSERT INTO engine_example.companies (id, name) VALUES
  (10, 'Analytical Engines Ltd'),
  (11, 'US Navy'),
  (12, 'TU Eindhoven'),
  (13, 'MIT'),
  (14, 'Bell Labs');

INSERT INTO engine_example.users
  (id, email, first_name, last_name, company_id, plan, orders, lifetime_value, last_seen_at, active)
VALUES
  (1, 'Ada@Example.com',        'Ada',     'Lovelace', 10, 'enterprise', 12, 15400.00, '2024-05-01 09:30:00+01', true),
  (2, 'grace@navy.example',     'Grace',   'Hopper',   11, 'pro',         7,  2350.50, '2024-05-02 14:00:00-04', true),
  (3, 'alan@bletchley.example', 'Alan',    'Turing',   10, 'free',        0,     0.00, NULL,                     true),
  (4, 'edsger@tue.example',     'Edsger',  'Dijkstra', 12, 'pro',         3,   899.99, '2024-04-28 08:15:00+02', true),
  (5, 'barbara@mit.example',    'Barbara', 'Liskov',   13, 'enterprise', 21, 48210.00, '2024-05-03 17:45:00-04', true),
  (6, 'ken@bell.example',       'Ken',     'Thompson', 14, 'free',        1,    19.00, '2023-11-20 12:00:00+00', false),
  (7, 'dennis@bell.example',    'Dennis',  'Ritchie',  14, 'pro',         4,  1200.00, '2024-04-30 22:10:00+00', true),
  (8, 'John@MIT.example',       'John',    'McCarthy', 13, 'free',        2,    45.50, '2024-03-15 10:00:00-05', true);
