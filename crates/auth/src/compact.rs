//! Reading a compact JWS (`header.payload.signature`) and checking its claims.
//!
//! [`crate::TokenVerifier`] splits and decodes each token once here. It checks HS256
//! signatures itself with a pre-keyed HMAC-SHA256 (the `sha2` crate uses the CPU's SHA
//! instructions where present); EdDSA and ES256 signatures go to jwt-simple. Every
//! token's claims are then checked here, whatever the algorithm, with the same rules as
//! jwt-simple's: `iat` and `nbf` not in the future and `exp` not in the past beyond the
//! leeway, `iss` equal and `aud` containing the expected values.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::TokenRejection;

/// The maximum header length accepted, in base64url characters.
const MAX_HEADER_CHARS: usize = 1024;

/// A compact JWS split into its parts, with the header decoded.
#[derive(Debug)]
pub(crate) struct CompactToken<'a> {
    /// The decoded header.
    pub header: Header,
    /// The rest, or `None` when the token does not have exactly three parts.
    rest: Option<SignedParts<'a>>,
}

#[derive(Debug)]
struct SignedParts<'a> {
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a [u8],
    /// The payload, base64url.
    payload: &'a str,
    /// The signature, base64url.
    signature: &'a str,
}

/// The header fields that decide how a token verifies.
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    /// `alg`.
    pub alg: String,
    /// `kid`.
    #[serde(default)]
    pub kid: Option<String>,
    /// `typ`: `JWT` or a media type ending in `+jwt`, in any case.
    #[serde(default)]
    typ: Option<String>,
    /// `crit`: no extension is understood, so any entry rejects the token.
    #[serde(default)]
    crit: Option<Vec<String>>,
}

impl<'a> CompactToken<'a> {
    /// Splits `token` into three base64url parts and decodes the header. A header that
    /// does not decode is malformed. Missing or extra parts count as malformed only when
    /// the signature is checked, so the log names a wrong `alg` or `kid` first.
    pub fn parse(token: &'a str) -> Result<Self, TokenRejection> {
        let mut parts = token.splitn(3, '.');
        let header = parts.next().unwrap_or_default();
        if header.len() > MAX_HEADER_CHARS {
            return Err(TokenRejection::Malformed);
        }
        let decoded = URL_SAFE_NO_PAD.decode(header).map_err(|_| TokenRejection::Malformed)?;
        let header_fields: Header =
            serde_json::from_slice(&decoded).map_err(|_| TokenRejection::Malformed)?;
        if header_fields.crit.as_ref().is_some_and(|crit| !crit.is_empty()) {
            return Err(TokenRejection::Malformed);
        }
        if let Some(typ) = &header_fields.typ {
            let typ = typ.to_ascii_uppercase();
            if typ != "JWT" && !typ.ends_with("+JWT") {
                return Err(TokenRejection::Malformed);
            }
        }

        let rest = match (parts.next(), parts.next()) {
            (Some(payload), Some(signature)) if !signature.contains('.') => Some(SignedParts {
                signing_input: &token.as_bytes()[..header.len() + 1 + payload.len()],
                payload,
                signature,
            }),
            _ => None,
        };
        Ok(Self { header: header_fields, rest })
    }

    fn parts(&self) -> Result<&SignedParts<'a>, TokenRejection> {
        self.rest.as_ref().ok_or(TokenRejection::Malformed)
    }

    /// Returns `header.payload`, the bytes the signature covers.
    pub fn signing_input(&self) -> Result<&'a [u8], TokenRejection> {
        Ok(self.parts()?.signing_input)
    }

    /// Decodes the signature into `buffer` and returns its bytes. A signature that is
    /// not base64url or longer than `buffer` is a bad signature.
    pub fn signature<'b>(&self, buffer: &'b mut [u8]) -> Result<&'b [u8], TokenRejection> {
        let length = URL_SAFE_NO_PAD
            .decode_slice(self.parts()?.signature, buffer)
            .map_err(|_| TokenRejection::BadSignatureOrClaims)?;
        Ok(&buffer[..length])
    }

    /// Decodes the payload's claims. Call it only after the signature verified.
    pub fn claims(&self) -> Result<Claims, TokenRejection> {
        let decoded = URL_SAFE_NO_PAD
            .decode(self.parts()?.payload)
            .map_err(|_| TokenRejection::BadSignatureOrClaims)?;
        serde_json::from_slice(&decoded).map_err(|_| TokenRejection::BadSignatureOrClaims)
    }
}

/// The claims of an access token. Times are whole seconds since the Unix epoch; a
/// negative or fractional time does not parse, so the token is rejected.
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    #[serde(default)]
    pub iat: Option<u64>,
    #[serde(default)]
    pub exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `aud`: one audience or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, expected: &str) -> bool {
        match self {
            Self::One(audience) => audience == expected,
            Self::Many(audiences) => audiences.iter().any(|audience| audience == expected),
        }
    }
}

impl Claims {
    /// Checks the times against `now` with `leeway` seconds of tolerance, then `iss`
    /// and `aud`, in jwt-simple's order. A token without `exp` passes here; the caller
    /// requires it.
    pub fn check(&self, now: u64, leeway: u64, issuer: &str, audience: &str) -> Result<(), TokenRejection> {
        if self.iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return Err(TokenRejection::NotYetValid);
        }
        if self.nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
            return Err(TokenRejection::NotYetValid);
        }
        if self.exp.is_some_and(|exp| now < leeway || now - leeway > exp) {
            return Err(TokenRejection::Expired);
        }
        if self.iss.as_deref() != Some(issuer) {
            return Err(TokenRejection::WrongIssuer);
        }
        if !self.aud.as_ref().is_some_and(|aud| aud.contains(audience)) {
            return Err(TokenRejection::WrongAudience);
        }
        Ok(())
    }
}
