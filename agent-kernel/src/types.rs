//! Value types shared across the kernel: safety classes, sensitivity tags and
//! response modes, with the stable string forms used in telemetry labels.

use serde::{Deserialize, Serialize};

/// How dangerous a capability is; decides which roles and justification it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SafetyClass {
    /// Reads data; no side effects.
    Read,
    /// Changes data.
    Write,
    /// Deletes or irreversibly changes data.
    Destructive,
}

impl SafetyClass {
    /// The stable upper-case form used in telemetry labels (`READ`, `WRITE`, `DESTRUCTIVE`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::Destructive => "DESTRUCTIVE",
        }
    }
}

/// What kind of sensitive data a capability's output may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SensitivityTag {
    /// Nothing sensitive.
    None,
    /// Personally identifiable information.
    Pii,
    /// Payment card data.
    Pci,
    /// Credentials and other secrets.
    Secrets,
}

impl SensitivityTag {
    /// The stable upper-case form used in telemetry labels (`NONE`, `PII`, `PCI`, `SECRETS`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Pii => "PII",
            Self::Pci => "PCI",
            Self::Secrets => "SECRETS",
        }
    }
}

/// How much of a tool's output the caller receives in its [`Frame`](crate::Frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Deterministic facts about the output (the default).
    #[default]
    Summary,
    /// A bounded table preview.
    Table,
    /// Only a handle to the stored output.
    HandleOnly,
    /// The redacted output itself (admins only).
    Raw,
}

impl ResponseMode {
    /// The stable lower-case form (`summary`, `table`, `handle_only`, `raw`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Table => "table",
            Self::HandleOnly => "handle_only",
            Self::Raw => "raw",
        }
    }
}
