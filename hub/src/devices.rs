//! Enrollment bookkeeping in the hub's SQLite database: bootstrap tokens (stored as SHA-256
//! only, with expiry and remaining uses) and the devices that enrolled or were revoked.
//!
//! A token is a secret shown once by `outpost-hub token create`; the database never holds it,
//! so a copy of `hub.sqlite` cannot enroll anything.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use crate::store::{Store, StoreError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS enroll_tokens (
    sha256        TEXT    PRIMARY KEY,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    uses          INTEGER NOT NULL,
    uses_left     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id                TEXT PRIMARY KEY,
    key_protection    TEXT,
    cert_not_after_ms INTEGER,
    enrolled_at_ms    INTEGER,
    revoked_at_ms     INTEGER,
    last_seen_ms      INTEGER,
    certs_after_ms    INTEGER
);
";

/// Databases made before `certs_after_ms` existed get the column (NULL: no restriction).
pub(crate) fn migrate(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    if conn
        .prepare("SELECT certs_after_ms FROM devices LIMIT 0")
        .is_err()
    {
        conn.execute_batch("ALTER TABLE devices ADD COLUMN certs_after_ms INTEGER")?;
    }
    Ok(())
}

/// Prefix of every token, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "opt1_";

/// A new random token: [`TOKEN_PREFIX`] + 32 random bytes as hex.
pub fn new_token() -> Result<String, rand::rand_core::OsError> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

/// What is stored for a token: its SHA-256, never the token.
pub fn token_hash(token: &str) -> String {
    outpost_proto::sha256_hex(token.trim().as_bytes())
}

/// Why a token cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("unknown enrollment token")]
    Unknown,
    #[error("enrollment token expired")]
    Expired,
    #[error("enrollment token has no uses left")]
    UsedUp,
}

/// Why [`Store::enroll`] did not record the device.
#[derive(Debug, thiserror::Error)]
pub enum EnrollRefusal {
    #[error(transparent)]
    Token(#[from] TokenRefusal),
    #[error("device {0} is revoked")]
    Revoked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for EnrollRefusal {
    fn from(e: rusqlite::Error) -> Self {
        EnrollRefusal::Store(e.into())
    }
}

/// An enrolled (or revoked) device as `outpost-hub devices` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRow {
    pub id: String,
    /// `tpm`, `software`, or `None` for a device revoked before it ever enrolled.
    pub key_protection: Option<String>,
    pub cert_not_after_ms: Option<i64>,
    pub enrolled_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
}

/// A device that just got a certificate.
#[derive(Debug, Clone, Copy)]
pub struct NewEnrollment<'a> {
    pub id: &'a str,
    pub key_protection: &'a str,
    pub cert_not_after_ms: i64,
}

impl Store {
    /// Stores a token's hash; `uses` is how many enrollments it allows.
    pub fn add_token(
        &mut self,
        hash: &str,
        now_ms: i64,
        expires_at_ms: i64,
        uses: u32,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO enroll_tokens (sha256, created_at_ms, expires_at_ms, uses, uses_left)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![hash, now_ms, expires_at_ms, uses],
        )?;
        Ok(())
    }

    /// In one transaction: the token is valid, the device is not revoked, then one use of the
    /// token is spent and the device recorded. A refused enrollment spends nothing.
    pub fn enroll(
        &mut self,
        hash: &str,
        now_ms: i64,
        device: NewEnrollment<'_>,
    ) -> Result<(), EnrollRefusal> {
        let tx = self.conn.transaction()?;
        check_token(&tx, hash, now_ms)?;
        if revoked(&tx, device.id)? {
            return Err(EnrollRefusal::Revoked(device.id.to_owned()));
        }
        tx.execute(
            "UPDATE enroll_tokens SET uses_left = uses_left - 1 WHERE sha256 = ?1",
            params![hash],
        )?;
        tx.execute(
            "INSERT INTO devices (id, key_protection, cert_not_after_ms, enrolled_at_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET key_protection = ?2, cert_not_after_ms = ?3,
                                            enrolled_at_ms = ?4",
            params![
                device.id,
                device.key_protection,
                device.cert_not_after_ms,
                now_ms
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records a renewed certificate's expiry, in one transaction with the revocation check
    /// (a device revoked meanwhile is refused). A device not in the table (e.g. made by
    /// `init`) gets a row.
    pub fn renew(&mut self, id: &str, cert_not_after_ms: i64) -> Result<(), EnrollRefusal> {
        let tx = self.conn.transaction()?;
        if revoked(&tx, id)? {
            return Err(EnrollRefusal::Revoked(id.to_owned()));
        }
        tx.execute(
            "INSERT INTO devices (id, cert_not_after_ms) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET cert_not_after_ms = ?2",
            params![id, cert_not_after_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Whether a token would be accepted now (read only; [`Store::enroll`] decides for real).
    pub fn check_token(&mut self, hash: &str, now_ms: i64) -> Result<(), EnrollRefusal> {
        let tx = self.conn.transaction()?;
        check_token(&tx, hash, now_ms)
    }

    /// Why a verified client certificate of `id` with notBefore `not_before_ms` is refused:
    /// the device is revoked, or the certificate predates a revocation that an operator lifted
    /// with [`Store::allow`] (only certificates issued after that count).
    pub fn certificate_refusal(
        &self,
        id: &str,
        not_before_ms: i64,
    ) -> Result<Option<&'static str>, StoreError> {
        let row: Option<(Option<i64>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT revoked_at_ms, certs_after_ms FROM devices WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((Some(_), _)) => Some("revoked"),
            Some((None, Some(after))) if not_before_ms <= after => {
                Some("revoked before; this certificate predates the operator's allow")
            }
            _ => None,
        })
    }

    /// The earliest notBefore (exclusive) a new certificate of `id` may have, after an allow.
    pub fn certs_after(&self, id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT certs_after_ms FROM devices WHERE id = ?1",
                params![id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Lifts the revocation of `id`: it may enroll again with a token. Its certificates issued
    /// before the revocation stay refused (notBefore ≤ the revocation time: none was issued
    /// while it was revoked), and new ones start after it — never in the future, however soon
    /// the device enrolls again. Returns false if it was not revoked.
    pub fn allow(&mut self, id: &str, _now_ms: i64) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE devices SET
                    certs_after_ms = max(revoked_at_ms, coalesce(certs_after_ms, revoked_at_ms)),
                    revoked_at_ms = NULL
             WHERE id = ?1 AND revoked_at_ms IS NOT NULL",
            params![id],
        )?;
        Ok(changed == 1)
    }

    pub fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT revoked_at_ms IS NOT NULL FROM devices WHERE id = ?1",
                params![id],
                |r| r.get::<_, bool>(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    /// Revokes `id` (also one that never enrolled, e.g. made by `init`). Returns false if it
    /// was already revoked; the first revocation time is kept.
    pub fn revoke(&mut self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "INSERT INTO devices (id, revoked_at_ms) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET revoked_at_ms = ?2 WHERE revoked_at_ms IS NULL",
            params![id, now_ms],
        )?;
        Ok(changed == 1)
    }

    pub fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, key_protection, cert_not_after_ms, enrolled_at_ms, revoked_at_ms,
                    last_seen_ms FROM devices ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DeviceRow {
                    id: r.get(0)?,
                    key_protection: r.get(1)?,
                    cert_not_after_ms: r.get(2)?,
                    enrolled_at_ms: r.get(3)?,
                    revoked_at_ms: r.get(4)?,
                    last_seen_ms: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// `outpost-hub devices --json`: times as RFC 3339 (or null), plus a `status` word.
pub fn render_json(rows: &[DeviceRow]) -> Result<String, serde_json::Error> {
    let t = |ms: Option<i64>| ms.map(outpost_proto::time::rfc3339_millis);
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "status": status(r),
                "key_protection": r.key_protection,
                "cert_not_after": t(r.cert_not_after_ms),
                "enrolled_at": t(r.enrolled_at_ms),
                "last_seen": t(r.last_seen_ms),
                "revoked_at": t(r.revoked_at_ms),
            })
        })
        .collect();
    serde_json::to_string_pretty(&items)
}

/// `outpost-hub devices`: one line per device.
pub fn render_table(rows: &[DeviceRow]) -> String {
    let t = |ms: Option<i64>| {
        ms.map(|m| {
            let full = outpost_proto::time::rfc3339_millis(m);
            full.get(..19).unwrap_or(&full).replace('T', " ")
        })
        .unwrap_or_else(|| "-".into())
    };
    let mut out = format!(
        "{:<64}  {:<8}  {:<8}  {:<19}  {:<19}  {:<19}\n",
        "ID", "STATUS", "KEY", "CERT EXPIRES", "ENROLLED", "LAST SEEN"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<64}  {:<8}  {:<8}  {:<19}  {:<19}  {:<19}\n",
            r.id,
            status(r),
            r.key_protection.as_deref().unwrap_or("-"),
            t(r.cert_not_after_ms),
            t(r.enrolled_at_ms),
            t(r.last_seen_ms),
        ));
    }
    out.push_str(&format!("{} device(s)\n", rows.len()));
    out
}

fn status(r: &DeviceRow) -> &'static str {
    if r.revoked_at_ms.is_some() {
        "revoked"
    } else {
        "enrolled"
    }
}

fn check_token(tx: &Transaction<'_>, hash: &str, now_ms: i64) -> Result<(), EnrollRefusal> {
    let row: Option<(i64, i64)> = tx
        .query_row(
            "SELECT expires_at_ms, uses_left FROM enroll_tokens WHERE sha256 = ?1",
            params![hash],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Err(TokenRefusal::Unknown.into()),
        Some((expires, _)) if now_ms >= expires => Err(TokenRefusal::Expired.into()),
        Some((_, left)) if left <= 0 => Err(TokenRefusal::UsedUp.into()),
        Some(_) => Ok(()),
    }
}

fn revoked(tx: &Transaction<'_>, id: &str) -> Result<bool, rusqlite::Error> {
    Ok(tx
        .query_row(
            "SELECT revoked_at_ms IS NOT NULL FROM devices WHERE id = ?1",
            params![id],
            |r| r.get::<_, bool>(0),
        )
        .optional()?
        .unwrap_or(false))
}

/// Marks an enrolled device as seen (inside the ingest transaction; a no-op for devices that
/// never enrolled, such as the ones `init` makes).
pub(crate) fn touch(tx: &Transaction<'_>, id: &str, now_ms: i64) -> Result<(), rusqlite::Error> {
    tx.prepare_cached("UPDATE devices SET last_seen_ms = ?2 WHERE id = ?1")?
        .execute(params![id, now_ms])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str) -> NewEnrollment<'_> {
        NewEnrollment {
            id,
            key_protection: "tpm",
            cert_not_after_ms: 9_000,
        }
    }

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_eq!(token_hash(&a), outpost_proto::sha256_hex(a.as_bytes()));
        assert_eq!(token_hash(&format!(" {a}\n")), token_hash(&a));
    }

    #[test]
    fn single_use_token_enrolls_once_and_refusals_spend_nothing() {
        let mut s = Store::open_in_memory().unwrap();
        s.add_token("h1", 0, 1000, 1).unwrap();
        s.revoke("bad", 5).unwrap();
        // A revoked device does not spend the token.
        assert!(matches!(
            s.enroll("h1", 10, dev("bad")),
            Err(EnrollRefusal::Revoked(_))
        ));
        s.enroll("h1", 10, dev("d1")).unwrap();
        assert!(matches!(
            s.enroll("h1", 11, dev("d2")),
            Err(EnrollRefusal::Token(TokenRefusal::UsedUp))
        ));
        assert!(matches!(
            s.enroll("nope", 11, dev("d2")),
            Err(EnrollRefusal::Token(TokenRefusal::Unknown))
        ));
        s.add_token("h2", 0, 100, 5).unwrap();
        assert!(matches!(
            s.enroll("h2", 100, dev("d2")),
            Err(EnrollRefusal::Token(TokenRefusal::Expired))
        ));
        let rows = s.devices().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].id, "d1");
        assert_eq!(rows[1].key_protection.as_deref(), Some("tpm"));
        assert_eq!(rows[1].enrolled_at_ms, Some(10));
    }

    #[test]
    fn revoke_is_sticky_and_last_seen_rides_on_ingest() {
        let mut s = Store::open_in_memory().unwrap();
        s.add_token("h", 0, 1000, 3).unwrap();
        s.enroll("h", 1, dev("d1")).unwrap();
        let a = "a".repeat(64);
        let rec = crate::store::NewRecord {
            id: "r",
            stream: "t",
            created_at_ms: 1,
            sha256: &a,
            payload: "1",
        };
        s.insert_all("d1", &[rec], 42).unwrap();
        assert_eq!(s.devices().unwrap()[0].last_seen_ms, Some(42));
        assert!(!s.is_revoked("d1").unwrap());
        assert!(s.revoke("d1", 50).unwrap());
        assert!(!s.revoke("d1", 60).unwrap());
        assert!(s.is_revoked("d1").unwrap());
        assert_eq!(s.devices().unwrap()[0].revoked_at_ms, Some(50));
        // Re-enrolling a revoked id is refused, token unspent.
        assert!(matches!(
            s.enroll("h", 70, dev("d1")),
            Err(EnrollRefusal::Revoked(_))
        ));
        s.enroll("h", 70, dev("d2")).unwrap();
        s.enroll("h", 71, dev("d3")).unwrap();
    }
}
