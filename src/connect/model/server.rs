//! What Connect says about its own requests and itself: activity log records, `/health`, and
//! the body of an error response.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::connect::model::{ActivityAction, ActivityResult, IdRef, ResourceType};

/// The actor of an activity record.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityActor {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub jti: String,
    #[serde(default)]
    pub user_agent: String,
    #[serde(default)]
    pub request_ip: String,
}

/// The resource of an activity record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityResource {
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<IdRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<IdRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_version: Option<u64>,
}

/// One record of `GET /v1/activity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRequest {
    pub request_id: String,
    pub timestamp: DateTime<Utc>,
    pub action: ActivityAction,
    pub result: ActivityResult,
    #[serde(default)]
    pub actor: ActivityActor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ActivityResource>,
}

/// One dependency in `/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDependency {
    pub service: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The body of `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealth {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub dependencies: Vec<ServiceDependency>,
}

/// The body of every error response: `{"status": N, "message": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub status: u16,
    pub message: String,
}
