DROP TRIGGER audit_log_reject_delete;
DROP TRIGGER audit_log_reject_update;
DROP TABLE audit_log;
DROP TABLE refresh_tokens;
DROP TABLE user_roles;
DROP TABLE role_permissions;
DROP TABLE roles;
DROP TABLE users;
