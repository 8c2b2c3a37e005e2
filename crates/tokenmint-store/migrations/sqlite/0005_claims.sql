-- Custom claims (a JSON object) on credentials and organizations; older instances ignore them.
ALTER TABLE credentials ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';
ALTER TABLE organizations ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';
