//! Opening the TPM: TCTI string from config to an ESAPI context.

use std::str::FromStr;

use tss_esapi::{Context, TctiNameConf};

use crate::IdentityError;

/// Open an ESAPI context over `tcti`, e.g. `device:/dev/tpmrm0` (kernel resource manager)
/// or `swtpm:host=127.0.0.1,port=2321` (tests; swtpm's control port must be port + 1).
pub(super) fn open(tcti: &str) -> Result<Context, IdentityError> {
    let unavailable = |detail: String| IdentityError::TpmUnavailable {
        tcti: tcti.to_owned(),
        detail,
    };
    let conf = TctiNameConf::from_str(tcti).map_err(|e| unavailable(format!("bad TCTI: {e}")))?;
    Context::new(conf).map_err(|e| unavailable(e.to_string()))
}
