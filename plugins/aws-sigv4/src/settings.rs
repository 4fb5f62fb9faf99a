//! The config the AWS plugins read alike: the credential to sign with (`access-key-id`,
//! `secret-access-key`, `session-token`) and region names.

use opsync_guest::settings::{optional_secret, secret};
use opsync_guest::{PluginError, misconfigured};

use crate::Credentials;

/// Checks that the credential is configured (the key id and secret set and not empty, the
/// session token optional) without revealing it.
pub fn check_credentials() -> Result<(), PluginError> {
    secret("access-key-id")?;
    secret("secret-access-key")?;
    optional_secret("session-token")?;
    Ok(())
}

/// The credential, revealed.
pub fn credentials() -> Result<Credentials, PluginError> {
    Ok(Credentials {
        access_key_id: secret("access-key-id")?.reveal(),
        secret_access_key: secret("secret-access-key")?.reveal(),
        session_token: optional_secret("session-token")?.map(|s| s.reveal()),
    })
}

/// `region`, the value of config key `key`, if it looks like an AWS region (lower-case letters,
/// digits and `-`, as `eu-west-1`).
pub fn region(key: &str, region: String) -> Result<String, PluginError> {
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(misconfigured(format!(
            "`{key}` `{region}` is not an AWS region"
        )));
    }
    Ok(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_checked() {
        assert_eq!(
            region("region", "eu-west-1".into()).expect("valid"),
            "eu-west-1"
        );
        assert!(matches!(
            region("iam-region", "EU West".into()),
            Err(PluginError::Misconfigured(m)) if m == "`iam-region` `EU West` is not an AWS region"
        ));
        assert!(region("region", String::new()).is_err());
    }
}
