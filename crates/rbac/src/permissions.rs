//! The permissions that admin endpoints require.

use std::fmt;

/// A permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Read, create and update users.
    UsersManage,
    /// Create, change and delete roles; grant and revoke them.
    RolesManage,
    /// Read the audit log.
    LogsRead,
    /// Export the audit log.
    LogsExport,
}

impl Permission {
    /// Every permission. `system_admin` has them all.
    pub const ALL: [Permission; 4] = [Self::UsersManage, Self::RolesManage, Self::LogsRead, Self::LogsExport];

    /// Returns the stored and displayed name, such as `users.manage`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsersManage => "users.manage",
            Self::RolesManage => "roles.manage",
            Self::LogsRead => "logs.read",
            Self::LogsExport => "logs.export",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|permission| permission.as_str() == name)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
