-- The warehouse a day later: MIT is renamed (both its users' contacts change), Alan's account
-- is deleted, and Margaret signs up.
UPDATE engine_example.companies SET name = 'Massachusetts Institute of Technology' WHERE id = 13;

DELETE FROM engine_example.users WHERE id = 3;

INSERT INTO engine_example.users
  (id, email, first_name, last_name, company_id, plan, orders, lifetime_value, last_seen_at, active)
VALUES
  (9, 'margaret@mit.example', 'Margaret', 'Hamilton', 13, 'enterprise', 5, 12000.00, '2024-05-04 11:00:00+00', true);
