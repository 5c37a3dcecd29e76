//! Opaque cursors and page limits for list endpoints.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;

/// The page size when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest page size; larger requests get this many.
pub const MAX_LIMIT: i64 = 1000;

/// Encodes a keyset position as an opaque string.
pub fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("id:{id}"))
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is 400 `invalid`.
pub fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    let invalid = || ApiError::invalid_field("cursor", "Invalid cursor.");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix("id:").and_then(|id| id.parse::<i64>().ok()).filter(|id| *id > 0).ok_or_else(invalid)
}

/// Parses `limit`: a positive integer, capped at [`MAX_LIMIT`].
pub fn parse_limit(limit: Option<&str>) -> Result<i64, ApiError> {
    let Some(limit) = limit.filter(|value| !value.is_empty()) else {
        return Ok(DEFAULT_LIMIT);
    };
    match limit.parse::<i64>() {
        Ok(value) if value > 0 => Ok(value.min(MAX_LIMIT)),
        // Too many digits for i64 is still a positive integer: cap it like any other.
        Err(_)
            if limit.bytes().all(|byte| byte.is_ascii_digit()) && limit.bytes().any(|byte| byte != b'0') =>
        {
            Ok(MAX_LIMIT)
        }
        _ => Err(ApiError::invalid_field("limit", "Enter a positive integer.")),
    }
}

/// Parses a boolean query parameter: `true`, `false`, `1` or `0`.
pub fn parse_bool(field: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid_field(field, "Enter true or false.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        assert_eq!(decode_cursor(&encode_cursor(42)).ok(), Some(42));
    }

    #[test]
    fn forged_cursor_rejected() {
        assert!(decode_cursor("bm9wZQ").is_err());
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("id:-1")).is_err());
    }

    #[test]
    fn limit_capped_and_validated() {
        assert_eq!(parse_limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(parse_limit(Some("5000")).ok(), Some(MAX_LIMIT));
        assert_eq!(parse_limit(Some("99999999999999999999")).ok(), Some(MAX_LIMIT));
        assert!(parse_limit(Some("-1")).is_err());
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("ten")).is_err());
    }
}
