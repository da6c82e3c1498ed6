-- +goose Up
-- The HR export's optional hire_date (ISO date, "" when not given): rules
-- see device.declared.days_since_hire, and remote tools, KVMs and VPNs in
-- a hire's first weeks raise the severity (rules/new_hire.yaml).
ALTER TABLE people ADD COLUMN hire_date TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE people DROP COLUMN hire_date;
