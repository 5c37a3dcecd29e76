//! Users as the API shows them, and the rules for usernames and passwords.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::error::CoreError;
use crate::ids::UserId;

/// The maximum username length in characters, after NFKC normalization.
pub const MAX_USERNAME_CHARS: usize = 150;
/// The minimum password length in bytes.
pub const MIN_PASSWORD_BYTES: usize = 12;
/// The maximum password length in bytes; longer input is rejected before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The built-in role that has every permission.
pub const SYSTEM_ADMIN_ROLE: &str = "system_admin";

/// A user as the API returns it (`USER` in the contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    /// The user id.
    pub id: UserId,
    /// The username as it was given at creation, NFKC-normalized.
    pub username: String,
    /// The email address, if any.
    pub email: Option<String>,
    /// The names of the roles the user holds, sorted.
    pub roles: Vec<String>,
    /// False once the user is deactivated.
    pub is_active: bool,
}

/// Normalizes and validates a username; returns the stored form (NFKC).
///
/// Errors with [`CoreError::Invalid`] on the field `username` when the result is empty,
/// longer than [`MAX_USERNAME_CHARS`] or contains a character other than a letter, a digit
/// or one of `@ . + - _`.
pub fn normalize_username(raw: &str) -> Result<String, CoreError> {
    let normalized: String = raw.nfkc().collect();
    let length = normalized.chars().count();
    if length == 0 {
        return Err(CoreError::invalid("username", "This field may not be blank."));
    }
    if length > MAX_USERNAME_CHARS {
        return Err(CoreError::invalid(
            "username",
            format!("Ensure this field has no more than {MAX_USERNAME_CHARS} characters."),
        ));
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_');
    if !normalized.chars().all(allowed) {
        return Err(CoreError::invalid(
            "username",
            "Enter a valid username: letters, digits and @ . + - _ only.",
        ));
    }
    Ok(normalized)
}

/// Returns the form under which usernames are unique and looked up: NFKC, lower case,
/// NFKC again (lower-casing can leave text that is not in NFKC).
pub fn canonical_username(raw: &str) -> String {
    let normalized: String = raw.nfkc().collect();
    normalized.to_lowercase().nfkc().collect()
}

/// Checks a new password against the bounds: 12 to 1024 bytes and not the username.
///
/// `field` names the request field that errors are reported on.
pub fn validate_new_password(password: &str, username: &str, field: &str) -> Result<(), CoreError> {
    if password.len() < MIN_PASSWORD_BYTES {
        return Err(CoreError::invalid(
            field,
            format!("This password is too short. It must contain at least {MIN_PASSWORD_BYTES} bytes."),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CoreError::invalid(
            field,
            format!("This password is too long. It must contain at most {MAX_PASSWORD_BYTES} bytes."),
        ));
    }
    if canonical_username(password) == canonical_username(username) {
        return Err(CoreError::invalid(field, "The password is too similar to the username."));
    }
    Ok(())
}

/// The maximum email length in characters.
pub const MAX_EMAIL_CHARS: usize = 254;

/// Checks an email address: at most 254 characters, no whitespace or control
/// characters, one `@` with a non-empty local part and a domain that contains a dot and
/// neither starts nor ends with one.
pub fn validate_email(email: &str) -> Result<(), CoreError> {
    let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    });
    let clean = !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if email.chars().count() > MAX_EMAIL_CHARS || !well_formed || !clean {
        return Err(CoreError::invalid("email", "Enter a valid email address."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_nfkc_is_stored() {
        assert_eq!(normalize_username("ａｌｉｃｅ").ok().as_deref(), Some("alice"));
    }

    #[test]
    fn username_rejects_space_and_slash() {
        assert!(normalize_username("al ice").is_err());
        assert!(normalize_username("al/ice").is_err());
        assert!(normalize_username("").is_err());
    }

    #[test]
    fn username_length_counts_characters() {
        assert!(normalize_username(&"é".repeat(150)).is_ok());
        assert!(normalize_username(&"a".repeat(151)).is_err());
    }

    #[test]
    fn canonical_username_folds_case_and_width() {
        assert_eq!(canonical_username("Alice"), canonical_username("ＡＬＩＣＥ"));
    }

    #[test]
    fn email_validation_accepts_and_rejects() {
        assert!(validate_email("ada@example.com").is_ok());
        assert!(validate_email("ada@localhost").is_err());
        assert!(validate_email("ada example@example.com").is_err());
        assert!(validate_email("@example.com").is_err());
        assert!(validate_email("ada@@example.com").is_err());
    }

    #[test]
    fn password_bounds_are_bytes() {
        assert!(validate_new_password("short", "bob", "password").is_err());
        assert!(validate_new_password(&"x".repeat(1025), "bob", "password").is_err());
        assert!(validate_new_password("correct horse battery", "bob", "password").is_ok());
        assert!(validate_new_password("Bob-the-admin", "bob-the-admin", "password").is_err());
    }
}
