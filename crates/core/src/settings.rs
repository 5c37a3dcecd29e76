//! Settings: defaults, then an optional `finetune.toml` (or the file named by
//! `FINETUNE_CONFIG`), then environment variables; the last source wins.
//!
//! Settings read here: `ENVIRONMENT`, `SECRET_KEY`, `SECRET_KEY_FALLBACKS`,
//! `JWT_ALGORITHM`, `JWT_PRIVATE_KEY_FILE`, `JWT_PUBLIC_KEY_FALLBACK_FILES`, `JWT_ISSUER`,
//! `JWT_AUDIENCE`, `DATABASE_URL`, `DATABASE_POOL_SIZE`, `BIND`,
//! `CORS_ALLOW_ALL_ORIGINS`, `CORS_ALLOWED_ORIGINS`, `LOGIN_THROTTLE_RATE`,
//! `ACCESS_TOKEN_LIFETIME`, `REFRESH_TOKEN_LIFETIME`, `TRUSTED_PROXIES`,
//! `TLS_CERT_FILE`, `TLS_KEY_FILE` and `LOG_FORMAT`. In a file, keys are the lower-case
//! names. Durations take seconds or a unit (`300`, `5m`, `1h`, `1d`); booleans
//! `true`/`false`/`1`/`0`; lists are comma-separated.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::secret::Secret;

/// The minimum `SECRET_KEY` length in bytes in production.
pub const MIN_SECRET_KEY_BYTES: usize = 32;
/// The minimum number of distinct characters in a production `SECRET_KEY`; fewer marks
/// a placeholder such as `aaaa...` rather than a random key.
pub const MIN_SECRET_KEY_DISTINCT_CHARS: usize = 5;
/// The maximum access-token lifetime that `check --deploy` accepts, because a revoked
/// session keeps working until its access token expires.
pub const MAX_SAFE_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The maximum login attempts that `check --deploy` accepts from one IP, both at once
/// (the burst) and per minute (the refill).
pub const MAX_SAFE_LOGIN_ATTEMPTS_PER_MINUTE: u32 = 60;

/// An error in one setting; the message names the setting and the expected form.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value that cannot be parsed.
    #[error("invalid value for {name}: {message}")]
    Invalid {
        /// The setting name, upper case.
        name: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The configuration file or environment could not be read.
    #[error("cannot read settings: {0}")]
    Source(#[from] config::ConfigError),
}

/// `development` or `production`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployEnvironment {
    /// Relaxed defaults for a developer machine.
    Development,
    /// Strict checks; the server refuses unsafe settings.
    Production,
}

/// The JWT signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `SECRET_KEY`.
    Hs256,
    /// Ed25519 with a key file.
    EdDsa,
    /// ECDSA P-256 with a key file.
    Es256,
}

/// The log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A rate of `burst` requests per `period`, refilled evenly over the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The number of requests allowed at once.
    pub burst: u32,
    /// The time over which `burst` requests are refilled.
    pub period: Duration,
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Returns true when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns the entries wider than a proxy network can be (IPv4 wider than /8, IPv6
    /// wider than /32): with them, clients in that range could forge `X-Forwarded-For`.
    pub fn too_broad(&self) -> Vec<IpNet> {
        self.0
            .iter()
            .filter(|net| match net {
                IpNet::V4(v4) => v4.prefix_len() < 8,
                IpNet::V6(v6) => v6.prefix_len() < 32,
            })
            .copied()
            .collect()
    }

    /// Returns true when `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Resolves the client IP of a request.
    ///
    /// The client is the TCP `peer` unless the peer is a trusted proxy; then it is the
    /// right-most `X-Forwarded-For` entry that is not a trusted proxy. `forwarded_for`
    /// holds every `X-Forwarded-For` header value in order. A malformed entry stops the
    /// walk, and the last trusted hop is returned.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical_ip(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        let entries: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).collect();
        for entry in entries.iter().rev() {
            let Ok(ip) = entry.trim().parse::<IpAddr>() else {
                break;
            };
            client = canonical_ip(ip);
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

/// Maps IPv4-mapped IPv6 addresses to IPv4 so `::ffff:10.0.0.1` matches `10.0.0.0/8`.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The settings of one server process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `ENVIRONMENT`.
    pub environment: DeployEnvironment,
    /// `SECRET_KEY`; `None` until the server fills in the development key.
    pub secret_key: Option<Secret>,
    /// `SECRET_KEY_FALLBACKS`: keys that still verify tokens but never sign.
    pub secret_key_fallbacks: Vec<Secret>,
    /// `JWT_ALGORITHM`.
    pub jwt_algorithm: JwtAlgorithm,
    /// `JWT_PRIVATE_KEY_FILE`, for EdDSA and ES256.
    pub jwt_private_key_file: Option<PathBuf>,
    /// `JWT_PUBLIC_KEY_FALLBACK_FILES`, verify-only public keys.
    pub jwt_public_key_fallback_files: Vec<PathBuf>,
    /// `JWT_ISSUER`.
    pub jwt_issuer: String,
    /// `JWT_AUDIENCE`.
    pub jwt_audience: String,
    /// `DATABASE_URL`; may hold a password.
    pub database_url: Secret,
    /// `DATABASE_POOL_SIZE`: the maximum number of pooled connections.
    pub database_pool_size: u32,
    /// `BIND`.
    pub bind: String,
    /// `CORS_ALLOW_ALL_ORIGINS`.
    pub cors_allow_all_origins: bool,
    /// `CORS_ALLOWED_ORIGINS`, exact origins.
    pub cors_allowed_origins: Vec<String>,
    /// `LOGIN_THROTTLE_RATE`.
    pub login_throttle_rate: Rate,
    /// `ACCESS_TOKEN_LIFETIME`.
    pub access_token_lifetime: Duration,
    /// `REFRESH_TOKEN_LIFETIME`.
    pub refresh_token_lifetime: Duration,
    /// `TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedProxies,
    /// `TLS_CERT_FILE`.
    pub tls_cert_file: Option<PathBuf>,
    /// `TLS_KEY_FILE`.
    pub tls_key_file: Option<PathBuf>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
}

/// Every setting as text, before parsing. Absent means "use the default".
#[derive(Debug, Default, Deserialize)]
struct RawSettings {
    environment: Option<String>,
    secret_key: Option<Secret>,
    secret_key_fallbacks: Option<Secret>,
    jwt_algorithm: Option<String>,
    jwt_private_key_file: Option<String>,
    jwt_public_key_fallback_files: Option<String>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    database_url: Option<Secret>,
    database_pool_size: Option<String>,
    bind: Option<String>,
    cors_allow_all_origins: Option<String>,
    cors_allowed_origins: Option<String>,
    login_throttle_rate: Option<String>,
    access_token_lifetime: Option<String>,
    refresh_token_lifetime: Option<String>,
    trusted_proxies: Option<String>,
    tls_cert_file: Option<String>,
    tls_key_file: Option<String>,
    log_format: Option<String>,
}

impl Settings {
    /// Loads settings from the defaults, the configuration file and the environment.
    pub fn load() -> Result<Self, SettingsError> {
        Self::load_with_overrides(&[])
    }

    /// Loads settings like [`Settings::load`], then replaces the settings named in
    /// `overrides` (`(NAME, value)` pairs), as `finetune check --deploy` does with
    /// `ENVIRONMENT=production`.
    pub fn load_with_overrides(overrides: &[(&str, &str)]) -> Result<Self, SettingsError> {
        let path = std::env::var("FINETUNE_CONFIG").unwrap_or_else(|_| "finetune.toml".into());
        let mut builder = config::Config::builder()
            .add_source(config::File::new(&path, config::FileFormat::Toml).required(false))
            .add_source(config::Environment::default().try_parsing(false));
        for (name, value) in overrides {
            builder = builder.set_override(name.to_lowercase(), *value)?;
        }
        Self::from_raw(builder.build()?.try_deserialize()?)
    }

    /// Parses settings from `(NAME, value)` pairs alone, ignoring the file and the
    /// environment. Meant for tests and embedding.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder();
        for (name, value) in pairs {
            builder = builder.set_override(name.to_lowercase(), value)?;
        }
        Self::from_raw(builder.build()?.try_deserialize()?)
    }

    fn from_raw(raw: RawSettings) -> Result<Self, SettingsError> {
        let environment = match raw.environment.as_deref().map(str::trim) {
            None | Some("") | Some("development") => DeployEnvironment::Development,
            Some("production") => DeployEnvironment::Production,
            Some(other) => {
                return Err(invalid("ENVIRONMENT", format!("{other:?}; expected development or production")));
            }
        };
        let production = environment == DeployEnvironment::Production;

        let jwt_algorithm = match raw.jwt_algorithm.as_deref().map(str::trim) {
            None | Some("") | Some("HS256") => JwtAlgorithm::Hs256,
            Some("EdDSA") => JwtAlgorithm::EdDsa,
            Some("ES256") => JwtAlgorithm::Es256,
            Some(other) => {
                return Err(invalid("JWT_ALGORITHM", format!("{other:?}; expected HS256, EdDSA or ES256")));
            }
        };
        let log_format = match raw.log_format.as_deref().map(str::trim) {
            None | Some("") | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(invalid("LOG_FORMAT", format!("{other:?}; expected text or json"))),
        };

        let trusted_proxies = parse_list(raw.trusted_proxies.as_deref())
            .into_iter()
            .map(|entry| parse_ip_net(&entry))
            .collect::<Result<Vec<_>, _>>()?;

        let secret_key = raw.secret_key.filter(|key| !key.is_empty());
        let secret_key_fallbacks = parse_list(raw.secret_key_fallbacks.as_ref().map(Secret::expose))
            .into_iter()
            .map(Secret::new)
            .collect();

        Ok(Self {
            environment,
            secret_key,
            secret_key_fallbacks,
            jwt_algorithm,
            jwt_private_key_file: non_empty(raw.jwt_private_key_file).map(PathBuf::from),
            jwt_public_key_fallback_files: parse_list(raw.jwt_public_key_fallback_files.as_deref())
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            jwt_issuer: non_empty(raw.jwt_issuer).unwrap_or_else(|| "finetune".into()),
            jwt_audience: non_empty(raw.jwt_audience).unwrap_or_else(|| "finetune-erp".into()),
            database_url: raw
                .database_url
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| Secret::new("sqlite://finetune.sqlite3")),
            database_pool_size: parse_pool_size(raw.database_pool_size.as_deref())?,
            bind: non_empty(raw.bind).unwrap_or_else(|| "127.0.0.1:8000".into()),
            cors_allow_all_origins: match raw.cors_allow_all_origins.as_deref() {
                None | Some("") => !production,
                Some(value) => parse_bool("CORS_ALLOW_ALL_ORIGINS", value)?,
            },
            cors_allowed_origins: parse_list(raw.cors_allowed_origins.as_deref()),
            login_throttle_rate: match raw.login_throttle_rate.as_deref() {
                None | Some("") => Rate { burst: 5, period: Duration::from_secs(60) },
                Some(value) => parse_rate("LOGIN_THROTTLE_RATE", value)?,
            },
            access_token_lifetime: parse_lifetime(
                "ACCESS_TOKEN_LIFETIME",
                raw.access_token_lifetime.as_deref(),
                300,
            )?,
            refresh_token_lifetime: parse_lifetime(
                "REFRESH_TOKEN_LIFETIME",
                raw.refresh_token_lifetime.as_deref(),
                86_400,
            )?,
            trusted_proxies: TrustedProxies(trusted_proxies),
            tls_cert_file: non_empty(raw.tls_cert_file).map(PathBuf::from),
            tls_key_file: non_empty(raw.tls_key_file).map(PathBuf::from),
            log_format,
        })
    }

    /// Returns true in production.
    pub fn is_production(&self) -> bool {
        self.environment == DeployEnvironment::Production
    }

    /// Returns true when this process terminates TLS itself.
    pub fn serves_tls(&self) -> bool {
        self.tls_cert_file.is_some() && self.tls_key_file.is_some()
    }

    /// Lists the settings that are unsafe for production, each as a sentence naming
    /// the setting and the fix. Empty when the settings are safe. The server refuses to
    /// start in production while this list is not empty.
    pub fn production_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.secret_key {
            None => problems.push(format!(
                "SECRET_KEY is missing: set it to at least {MIN_SECRET_KEY_BYTES} random bytes (for example `openssl rand -base64 48`)."
            )),
            Some(key) => problems.extend(weak_key_problem("SECRET_KEY", key)),
        }
        for (index, key) in self.secret_key_fallbacks.iter().enumerate() {
            let name = format!("SECRET_KEY_FALLBACKS entry {}", index + 1);
            problems.extend(weak_key_problem(&name, key));
        }
        if self.cors_allow_all_origins {
            problems.push(
                "CORS_ALLOW_ALL_ORIGINS is true: set it to false and list the client origins in CORS_ALLOWED_ORIGINS."
                    .into(),
            );
        }
        if !self.serves_tls() && self.trusted_proxies.is_empty() {
            problems.push(
                "the server would serve plain HTTP: set TLS_CERT_FILE and TLS_KEY_FILE, or declare the TLS-terminating proxy in TRUSTED_PROXIES."
                    .into(),
            );
        }
        for net in self.trusted_proxies.too_broad() {
            problems.push(format!(
                "TRUSTED_PROXIES contains {net}, wider than /8 (IPv4) or /32 (IPv6), so clients in it can forge X-Forwarded-For and pick the IP that the login throttle and the audit log see: list only the proxies' own addresses."
            ));
        }
        problems
    }

    /// Lists settings that production accepts but that weaken its protections, each as a
    /// sentence naming the setting and the fix. `finetune check --deploy` reports them
    /// together with [`Settings::production_problems`].
    pub fn deploy_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for origin in &self.cors_allowed_origins {
            if origin.to_ascii_lowercase().starts_with("http://") {
                warnings.push(format!(
                    "CORS_ALLOWED_ORIGINS lists {origin:?}, a page served over plain HTTP that anyone on its path can alter: list https:// origins only."
                ));
            }
        }
        if self.access_token_lifetime > MAX_SAFE_ACCESS_TOKEN_LIFETIME {
            warnings.push(format!(
                "ACCESS_TOKEN_LIFETIME is {}s: a revoked session keeps working until its access token expires, so keep it at most {}s (the default is 300s).",
                self.access_token_lifetime.as_secs(),
                MAX_SAFE_ACCESS_TOKEN_LIFETIME.as_secs()
            ));
        }
        let rate = self.login_throttle_rate;
        let per_minute = u64::from(rate.burst) * 60 / rate.period.as_secs().max(1);
        let limit = MAX_SAFE_LOGIN_ATTEMPTS_PER_MINUTE;
        if per_minute > u64::from(limit) || rate.burst > limit {
            warnings.push(format!(
                "LOGIN_THROTTLE_RATE allows {} login attempts at once and {per_minute} per minute from one IP: keep both at most {limit} (the default is 5/min).",
                rate.burst
            ));
        }
        warnings
    }
}

/// Returns the problem with a production signing key, if any: too short, or too few
/// distinct characters to be random.
fn weak_key_problem(name: &str, key: &Secret) -> Option<String> {
    let key = key.expose();
    if key.len() < MIN_SECRET_KEY_BYTES {
        return Some(format!(
            "{name} is {} bytes long: use at least {MIN_SECRET_KEY_BYTES} random bytes (for example `openssl rand -base64 48`).",
            key.len()
        ));
    }
    let mut distinct: Vec<char> = key.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_SECRET_KEY_DISTINCT_CHARS {
        return Some(format!(
            "{name} has only {} distinct characters, so it is a placeholder rather than a random key: generate one with `openssl rand -base64 48`.",
            distinct.len()
        ));
    }
    None
}

fn invalid(name: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { name, message: message.into() }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, SettingsError> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(invalid(name, format!("{other:?}; expected true, false, 1 or 0"))),
    }
}

fn parse_pool_size(value: Option<&str>) -> Result<u32, SettingsError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(10);
    };
    match value.parse::<u32>() {
        Ok(size) if (1..=1000).contains(&size) => Ok(size),
        _ => Err(invalid("DATABASE_POOL_SIZE", format!("{value:?}; expected an integer from 1 to 1000"))),
    }
}

fn parse_ip_net(entry: &str) -> Result<IpNet, SettingsError> {
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        invalid("TRUSTED_PROXIES", format!("{entry:?}; expected an IP address or a CIDR such as 10.0.0.0/8"))
    })
}

/// Parses a duration: plain seconds or a number with `s`, `m`, `h` or `d`.
pub fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (number, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((index, _)) => value.split_at(index),
        None => (value, "s"),
    };
    let number: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "s" => number,
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3600)?,
        "d" => number.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

fn parse_lifetime(
    name: &'static str,
    value: Option<&str>,
    default_secs: u64,
) -> Result<Duration, SettingsError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(Duration::from_secs(default_secs));
    };
    match parse_duration(value) {
        Some(duration) if !duration.is_zero() && duration.as_secs() <= 366 * 86_400 => Ok(duration),
        _ => Err(invalid(
            name,
            format!("{value:?}; expected a positive duration of at most 366d, such as 300, 5m, 1h or 1d"),
        )),
    }
}

/// Parses a rate such as `5/min`: a burst of N, refilled evenly over the period.
pub fn parse_rate(name: &'static str, value: &str) -> Result<Rate, SettingsError> {
    let error =
        || invalid(name, format!("{value:?}; expected N/sec, N/min, N/hour or N/day with N at least 1"));
    let (count, period) = value.trim().split_once('/').ok_or_else(error)?;
    let burst: u32 = count.trim().parse().map_err(|_| error())?;
    if burst == 0 {
        return Err(error());
    }
    let period = match period.trim() {
        "sec" | "s" | "second" => 1,
        "min" | "m" | "minute" => 60,
        "hour" | "h" => 3600,
        "day" | "d" => 86_400,
        _ => return Err(error()),
    };
    Ok(Rate { burst, period: Duration::from_secs(period) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        match Settings::from_pairs(pairs.iter().copied()) {
            Ok(settings) => settings,
            Err(error) => unreachable!("settings failed to parse: {error}"),
        }
    }

    #[test]
    fn defaults_match_contract() {
        let s = settings(&[]);
        assert_eq!(s.environment, DeployEnvironment::Development);
        assert_eq!(s.jwt_issuer, "finetune");
        assert_eq!(s.jwt_audience, "finetune-erp");
        assert_eq!(s.bind, "127.0.0.1:8000");
        assert!(s.cors_allow_all_origins);
        assert_eq!(s.access_token_lifetime, Duration::from_secs(300));
        assert_eq!(s.refresh_token_lifetime, Duration::from_secs(86_400));
        assert_eq!(s.login_throttle_rate, Rate { burst: 5, period: Duration::from_secs(60) });
        assert_eq!(s.database_url.expose(), "sqlite://finetune.sqlite3");
    }

    #[test]
    fn production_defaults_deny_all_origins() {
        assert!(!settings(&[("ENVIRONMENT", "production")]).cors_allow_all_origins);
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("5 weeks"), None);
        assert_eq!(parse_duration("-5"), None);
    }

    #[test]
    fn rate_parses_and_rejects() {
        assert_eq!(
            parse_rate("X", "10/hour").ok(),
            Some(Rate { burst: 10, period: Duration::from_secs(3600) })
        );
        assert!(parse_rate("X", "0/min").is_err());
        assert!(parse_rate("X", "5/fortnight").is_err());
    }

    #[test]
    fn invalid_setting_names_itself() {
        let error = Settings::from_pairs([("ACCESS_TOKEN_LIFETIME", "soon")]).err();
        assert!(error.is_some_and(|e| e.to_string().contains("ACCESS_TOKEN_LIFETIME")));
    }

    #[test]
    fn production_problems_name_settings() {
        let problems =
            settings(&[("ENVIRONMENT", "production"), ("SECRET_KEY", "short")]).production_problems();
        assert!(problems.iter().any(|p| p.starts_with("SECRET_KEY")));
        assert!(problems.iter().any(|p| p.contains("TRUSTED_PROXIES")));
    }

    #[test]
    fn production_problems_reject_weak_keys() {
        let repeated = "a".repeat(48);
        let problems = settings(&[
            ("ENVIRONMENT", "production"),
            ("SECRET_KEY", &repeated),
            ("SECRET_KEY_FALLBACKS", "short"),
        ])
        .production_problems();
        assert!(problems.iter().any(|p| p.starts_with("SECRET_KEY has only 1 distinct")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("SECRET_KEY_FALLBACKS entry 1")), "{problems:?}");
    }

    #[test]
    fn production_problems_reject_trusting_everyone() {
        let problems =
            settings(&[("ENVIRONMENT", "production"), ("TRUSTED_PROXIES", "0.0.0.0/1,128.0.0.0/1")])
                .production_problems();
        assert_eq!(
            problems.iter().filter(|p| p.starts_with("TRUSTED_PROXIES contains")).count(),
            2,
            "{problems:?}"
        );
        let private = settings(&[("ENVIRONMENT", "production"), ("TRUSTED_PROXIES", "10.0.0.0/8,fd00::/32")]);
        assert!(private.trusted_proxies.too_broad().is_empty());
    }

    #[test]
    fn deploy_warnings_name_weak_settings() {
        let warnings = settings(&[
            ("CORS_ALLOWED_ORIGINS", "http://app.example.com"),
            ("ACCESS_TOKEN_LIFETIME", "1d"),
            ("LOGIN_THROTTLE_RATE", "100/sec"),
        ])
        .deploy_warnings();
        for name in ["CORS_ALLOWED_ORIGINS", "ACCESS_TOKEN_LIFETIME", "LOGIN_THROTTLE_RATE"] {
            assert!(warnings.iter().any(|w| w.starts_with(name)), "no warning for {name}: {warnings:?}");
        }
    }

    #[test]
    fn deploy_warnings_catch_large_burst() {
        let warnings = settings(&[("LOGIN_THROTTLE_RATE", "1000/day")]).deploy_warnings();
        assert!(warnings.iter().any(|w| w.starts_with("LOGIN_THROTTLE_RATE")), "{warnings:?}");
    }

    #[test]
    fn deploy_warnings_empty_for_defaults() {
        let warnings = settings(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).deploy_warnings();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn client_ip_ignores_untrusted_forwarding() {
        let proxies = TrustedProxies::default();
        let peer: IpAddr = [203, 0, 113, 9].into();
        assert_eq!(proxies.client_ip(peer, ["1.2.3.4"].into_iter()), peer);
    }

    #[test]
    fn client_ip_takes_rightmost_untrusted_hop() {
        let s = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")]);
        let peer: IpAddr = [127, 0, 0, 1].into();
        let client = s.trusted_proxies.client_ip(peer, ["6.6.6.6, 198.51.100.7", "10.1.2.3"].into_iter());
        assert_eq!(client, IpAddr::from([198, 51, 100, 7]));
    }
}
