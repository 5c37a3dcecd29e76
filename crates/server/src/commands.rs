//! The one-off commands: `migrate`, `createsuperuser`, `flushexpiredtokens`, and the
//! helpers that `serve` shares with them.

use std::io::{IsTerminal, Read};

use chrono::Utc;
use finetune_activity::{Action, NewEntry, Outcome, record};
use finetune_auth::password::Passwords;
use finetune_core::db::{DbConnection, DbPool, build_pool, establish, run_migrations, write_transaction};
use finetune_core::settings::{Settings, SettingsError};
use finetune_core::user::{
    MAX_PASSWORD_BYTES, SYSTEM_ADMIN_ROLE, normalize_username, validate_email, validate_new_password,
};
use finetune_core::{CoreError, RequestContext};
use finetune_rbac::{NewUser, RbacError, User, roles, users};

/// An error that ends a command; its message is printed as `error: ...`.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A setting is invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A database or validation error.
    #[error("{}", describe_core(.0))]
    Core(#[from] CoreError),
    /// A token or password error.
    #[error(transparent)]
    Auth(#[from] finetune_auth::AuthError),
    /// A user or role error.
    #[error(transparent)]
    Rbac(#[from] RbacError),
    /// Anything else, already phrased for the operator.
    #[error("{0}")]
    Message(String),
}

impl From<diesel::result::Error> for CommandError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Core(error.into())
    }
}

fn describe_core(error: &CoreError) -> String {
    match error {
        CoreError::Invalid(fields) => fields
            .iter()
            .map(|(field, messages)| format!("{field}: {}", messages.join(" ")))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// Opens one connection to `DATABASE_URL`.
pub fn connect(settings: &Settings) -> Result<DbConnection, CommandError> {
    Ok(establish(settings.database_url.expose())?)
}

/// Builds the connection pool for `DATABASE_URL`.
pub fn pool(settings: &Settings) -> Result<DbPool, CommandError> {
    Ok(build_pool(settings.database_url.expose(), settings.database_pool_size)?)
}

/// `finetune migrate`.
pub fn migrate(settings: &Settings) -> Result<(), CommandError> {
    let mut connection = connect(settings)?;
    let applied = run_migrations(&mut connection)?;
    println!("applied {applied} migration(s)");
    Ok(())
}

/// Creates a user with the system_admin role and records `user.create` and
/// `role.grant`, all in one transaction.
pub fn create_admin(
    connection: &mut DbConnection,
    username: &str,
    email: Option<&str>,
    password_hash: &str,
) -> Result<User, CommandError> {
    let now = Utc::now();
    let context = RequestContext::command_line();
    write_transaction(connection, |connection| {
        let user = users::create(connection, &NewUser { username, email, password_hash }, now)?;
        roles::grant(connection, user.user_id(), SYSTEM_ADMIN_ROLE, now)?;
        let created = NewEntry::new(Action::UserCreate, Outcome::Success)
            .target("user", user.id)
            .detail("username", user.username.clone())
            .detail("via", "command_line");
        record(connection, &created, &context, now)?;
        let granted = NewEntry::new(Action::RoleGrant, Outcome::Success)
            .target("user", user.id)
            .detail("role", SYSTEM_ADMIN_ROLE)
            .detail("via", "command_line");
        record(connection, &granted, &context, now)?;
        Ok(user)
    })
}

/// Reads a password from standard input, or prompts twice on a terminal.
pub fn read_password() -> Result<String, CommandError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|error| CommandError::Message(format!("cannot read the password: {error}")))?;
        let second = rpassword::prompt_password("Password (again): ")
            .map_err(|error| CommandError::Message(format!("cannot read the password: {error}")))?;
        if first != second {
            return Err(CommandError::Message("the two passwords differ".into()));
        }
        return Ok(first);
    }
    let mut input = String::new();
    stdin.take(MAX_PASSWORD_BYTES as u64 + 2).read_to_string(&mut input).map_err(|error| {
        CommandError::Message(format!("cannot read the password from standard input: {error}"))
    })?;
    // One trailing newline belongs to the pipe, not the password.
    let password = input.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&input);
    if password.is_empty() {
        return Err(CommandError::Message("no password on standard input: pipe it in, one line".into()));
    }
    if password.contains(['\n', '\r']) {
        return Err(CommandError::Message(
            "the password on standard input spans several lines: give exactly one line".into(),
        ));
    }
    Ok(password.to_owned())
}

/// `finetune createsuperuser`.
pub fn create_superuser(
    settings: &Settings,
    username: &str,
    email: Option<&str>,
) -> Result<(), CommandError> {
    let username = normalize_username(username)?;
    if let Some(email) = email {
        validate_email(email)?;
    }
    let password = read_password()?;
    validate_new_password(&password, &username, "password")?;

    let mut connection = connect(settings)?;
    run_migrations(&mut connection)?;
    let password_hash = Passwords::new()?.hash(&password)?;
    let user = match create_admin(&mut connection, &username, email, &password_hash) {
        Err(CommandError::Rbac(RbacError::UsernameTaken)) => {
            return Err(CommandError::Message(format!("a user named {username:?} already exists")));
        }
        other => other?,
    };
    println!("created system_admin {:?} with id {}", user.username, user.id);
    Ok(())
}

/// `finetune flushexpiredtokens`.
pub fn flush_expired_tokens(settings: &Settings) -> Result<(), CommandError> {
    let mut connection = connect(settings)?;
    let deleted = finetune_auth::refresh::flush_expired(&mut connection, Utc::now(), finetune_auth::LEEWAY)?;
    println!("deleted {deleted} expired refresh token(s)");
    Ok(())
}
