//! Decoding and forging JWTs, to test how the server verifies them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{HS256Key, MACLike};
use serde_json::{Map, Value};

/// The decoded header and claims of a JWT.
#[derive(Clone, Debug)]
pub struct DecodedJwt {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// Decodes a compact JWT without verifying it, and panics when it is not one.
pub fn decode(token: &str) -> DecodedJwt {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three dot-separated parts: {token:?}");
    DecodedJwt { header: decode_part(parts[0], token), claims: decode_part(parts[1], token) }
}

fn decode_part(part: &str, token: &str) -> Map<String, Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|error| panic!("a JWT part is not base64url ({error}): {token:?}"));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|error| panic!("a JWT part is not a JSON object ({error}): {token:?}"))
}

fn encode_part(part: &Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(Value::Object(part.clone()).to_string())
}

/// Encodes `header` and `claims` and signs them with HMAC-SHA256 under `key`.
///
/// `header` is used as given, so `alg` and `kid` must already be in it.
pub fn sign_hs256(header: &Map<String, Value>, claims: &Map<String, Value>, key: &[u8]) -> String {
    let signing_input = format!("{}.{}", encode_part(header), encode_part(claims));
    let signature = HS256Key::from_bytes(key).authentication_tag(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Encodes `header` and `claims` with an empty signature, as `alg: none` tokens are.
pub fn unsigned(header: &Map<String, Value>, claims: &Map<String, Value>) -> String {
    format!("{}.{}.", encode_part(header), encode_part(claims))
}

/// Replaces one character in the middle of the claims part with another base64url character.
pub fn tamper_claims(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three dot-separated parts: {token:?}");
    let mut claims: Vec<char> = parts[1].chars().collect();
    let middle = claims.len() / 2;
    claims[middle] = if claims[middle] == 'A' { 'B' } else { 'A' };
    let claims: String = claims.into_iter().collect();
    format!("{}.{claims}.{}", parts[0], parts[2])
}

/// Returns the current Unix time in seconds.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
