//! The demo's durable state: the SQLite audit log and revocation store in a
//! directory it prints, and the check that a revoked token stays refused
//! when the kernel is rebuilt on the same file (a restart).

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use agent_kernel::store::sqlite::SqliteOptions;
use agent_kernel::store::{AuditKey, Stores};
use agent_kernel::{CapabilityRequest, Kernel, Principal, ResponseMode};
use anyhow::{Context as _, bail};

/// The environment variable holding the audit chain key (else a key file in
/// the store directory, created on first use).
pub const AUDIT_KEY_ENV: &str = "AGENT_KERNEL_AUDIT_KEY";

/// The database file inside the store directory.
pub const DB_FILE: &str = "audit.db";

/// The key file inside the store directory (mode 0600).
const KEY_FILE: &str = "audit.key";

/// `given`, or a new directory under the system temp dir named after this run.
pub fn store_dir(given: Option<&Path>) -> PathBuf {
    given.map_or_else(
        || {
            let millis = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            std::env::temp_dir().join(format!("agent-kernel-demo-{}-{millis}", std::process::id()))
        },
        Path::to_path_buf,
    )
}

/// Opens the stores in `dir` (created 0700 when missing), keyed with
/// [`AUDIT_KEY_ENV`] or the directory's key file.
///
/// # Errors
/// The directory or key file cannot be made, or the store cannot be opened
/// (the error names the path).
pub fn open(dir: &Path) -> anyhow::Result<Stores> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the store directory {}", dir.display()))?;
    let key = match std::env::var(AUDIT_KEY_ENV) {
        Ok(key) if !key.is_empty() => key.into_bytes(),
        _ => key_file(&dir.join(KEY_FILE))?,
    };
    let key = AuditKey::new(key).context("unusable audit key")?;
    Ok(Stores::sqlite(dir.join(DB_FILE), SqliteOptions::new(key))?)
}

/// The key in `path`, made (32 random bytes, hex, mode 0600) when missing.
fn key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(key) = fs::read(path) {
        return Ok(key);
    }
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for the audit key")?;
    let key = hex(&bytes);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the audit key file {}", path.display()))?;
    std::io::Write::write_all(&mut file, key.as_bytes())
        .with_context(|| format!("cannot write the audit key file {}", path.display()))?;
    Ok(key.into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the restart check saw.
#[derive(Debug, Clone)]
pub struct RestartCheck {
    /// The revoked token's id.
    pub token_id: String,
    /// The error kind the rebuilt kernel refused it with (`token_revoked`).
    pub refused_with: String,
}

/// Builds a kernel on the stores in `dir` with `build`, grants a token,
/// revokes it (written through to the store), drops the kernel, builds a new
/// one on the same directory (a restart) and presents the token to it.
/// Runs before telemetry is installed, on its own small runtime, so that it
/// adds no span or metric to the session's.
///
/// # Errors
/// A kernel or store error, or the rebuilt kernel accepting the token.
pub fn revoke_then_restart(
    dir: &Path,
    build: impl Fn(Stores) -> Result<Kernel, agent_kernel::KernelError>,
) -> anyhow::Result<RestartCheck> {
    let principal = Principal::new("analyst-restart")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme");
    let request = CapabilityRequest::new("billing.list_invoices", "restart check");
    let before = build(open(dir)?).context("cannot build the kernel")?;
    let token = before.get_token(&request, &principal, "")?;
    before.revoke_token(&token.token_id)?;
    drop(before);
    let after = build(open(dir)?).context("cannot build the kernel again")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("cannot start the Tokio runtime")?;
    let outcome = runtime.block_on(after.invoke(
        &token,
        &principal,
        agent_kernel::Args::new(),
        ResponseMode::Summary,
    ));
    let refused_with = match outcome {
        Ok(_) => bail!("the rebuilt kernel accepted a token revoked before the restart"),
        Err(err) => err.kind().to_owned(),
    };
    if refused_with != "token_revoked" {
        bail!(
            "the rebuilt kernel refused the revoked token with {refused_with}, not token_revoked"
        );
    }
    Ok(RestartCheck {
        token_id: token.token_id,
        refused_with,
    })
}
