//! The one way the AWS plugins call AWS: a POST to a service endpoint, SigV4-signed at the current
//! time, sent with the guest's wasi:http client.

use opsync_guest::PluginError;
use opsync_guest::clock::Instant;
use opsync_guest::http::{self, Endpoint, Request, Response};

use crate::{Credentials, Scope, sign};

/// One service endpoint, the scope to sign for there, and the credentials to sign with.
pub struct Client {
    pub endpoint: Endpoint,
    /// The region in the signature's scope.
    pub region: String,
    /// The service name in the signature's scope: `secretsmanager`, `iam`, `sts`.
    pub service: &'static str,
    pub credentials: Credentials,
}

impl Client {
    /// POSTs `payload` to the endpoint's base path + `/` with `headers` (the content type and the
    /// service's own headers), signed now. Returns the response whatever its status: what an
    /// error answer says is the service protocol's to read.
    pub fn post(
        &self,
        headers: Vec<(String, String)>,
        payload: Vec<u8>,
    ) -> Result<Response, PluginError> {
        let now = Instant::now();
        let timestamp = now.compact();
        let date = now.date();
        let path = format!("{}/", self.endpoint.base_path);
        let scope = Scope {
            date: &date,
            timestamp: &timestamp,
            region: &self.region,
            service: self.service,
        };
        let headers = sign(
            &self.credentials,
            &scope,
            &self.endpoint.authority,
            "POST",
            &path,
            headers,
            &payload,
        );
        http::send(Request {
            method: "POST",
            endpoint: &self.endpoint,
            path: "/".to_string(),
            headers,
            body: Some(payload),
        })
    }
}
