DROP TABLE audit_log;
DROP FUNCTION audit_log_reject_change();
DROP TABLE refresh_tokens;
DROP TABLE user_roles;
DROP TABLE role_permissions;
DROP TABLE roles;
DROP TABLE users;
