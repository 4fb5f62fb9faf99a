//! The `_bulk` wire format: the NDJSON body of `create` actions, and reading the per-item
//! statuses of the answer (HTTP 200 even when items fail).

use serde::Serialize;
use serde_json::{Value, json};

use opsync_audit_kit::AuditEvent;

/// What Elasticsearch did with one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// 200/201: stored now.
    Stored,
    /// 409: a document with this `_id` exists, from an earlier send.
    AlreadyStored,
    /// 429 or 5xx: worth sending again.
    Retry(u16),
    /// Any other status, with ES's reason: the document itself is refused.
    Rejected(u16, String),
}

/// The NDJSON lines of one record: a `create` action line (`_index`, `_id` = request-id) and the
/// document line, each ending with a newline (so any concatenation is a valid `_bulk` body).
pub fn lines(
    index: &str,
    event: &AuditEvent,
    doc: &impl Serialize,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    let action = json!({ "create": { "_index": index, "_id": event.request_id } });
    serde_json::to_writer(&mut out, &action)?;
    out.push(b'\n');
    serde_json::to_writer(&mut out, doc)?;
    out.push(b'\n');
    Ok(out)
}

/// The outcome of each item of a 2xx `_bulk` answer, in the order sent; `ids` are the `_id`s sent,
/// to check the answer covers exactly them.
pub fn outcomes(body: &[u8], ids: &[&str]) -> Result<Vec<ItemOutcome>, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let items = json["items"]
        .as_array()
        .ok_or("the answer has no `items` list")?;
    if items.len() != ids.len() {
        return Err(format!(
            "the answer has {} items for {} sent",
            items.len(),
            ids.len()
        ));
    }
    items
        .iter()
        .zip(ids)
        .map(|(item, id)| {
            let result = item
                .get("create")
                .or_else(|| item.get("index"))
                .ok_or("an item of the answer is not a `create` result")?;
            if let Some(got) = result["_id"].as_str()
                && got != *id
            {
                return Err(format!("the answer's item `{got}` is not the `{id}` sent"));
            }
            let status = result["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .ok_or("an item of the answer has no status")?;
            Ok(match status {
                200 | 201 => ItemOutcome::Stored,
                409 => ItemOutcome::AlreadyStored,
                429 | 500..=599 => ItemOutcome::Retry(status),
                other => {
                    let error = &result["error"];
                    let why = match (error["type"].as_str(), error["reason"].as_str()) {
                        (Some(t), Some(r)) => format!("{t}: {r}"),
                        (Some(t), None) => t.to_string(),
                        _ => "no reason given".to_string(),
                    };
                    ItemOutcome::Rejected(other, why.chars().take(300).collect())
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsync_audit_kit::format::Format;
    use opsync_audit_kit::{AuditActor, AuditEvent};

    fn event(id: &str) -> AuditEvent {
        AuditEvent {
            request_id: id.into(),
            timestamp: "2024-05-01T12:00:00Z".into(),
            action: "READ".into(),
            outcome: "SUCCESS".into(),
            actor: AuditActor {
                id: "a".into(),
                account: String::new(),
                jti: String::new(),
                user_agent: String::new(),
                request_ip: String::new(),
            },
            target: None,
            source: "activity".into(),
            detail: None,
        }
    }

    #[test]
    fn each_record_is_a_create_action_keyed_by_request_id_and_its_document() {
        let out = lines("idx", &event("r1"), &json!({"n": 1})).expect("renders");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\"create\":{\"_id\":\"r1\",\"_index\":\"idx\"}}\n{\"n\":1}\n"
        );
    }

    #[test]
    fn an_events_record_is_keyed_by_its_request_id_and_raw_goes_verbatim() {
        let detail =
            r#"{"uuid": "MCQODWN6NJC5VLCQIRWQTZXF4Q", "action": "reveal", "used_version": 3}"#;
        let event = AuditEvent {
            action: "reveal".into(),
            source: "itemusages".into(),
            detail: Some(detail.into()),
            ..event("MCQODWN6NJC5VLCQIRWQTZXF4Q")
        };
        let doc = Format::Raw.render(&event).expect("renders");
        let out = lines("logs-1password.itemusages-default", &event, &doc).expect("renders");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            format!(
                "{{\"create\":{{\"_id\":\"MCQODWN6NJC5VLCQIRWQTZXF4Q\",\
                 \"_index\":\"logs-1password.itemusages-default\"}}}}\n{detail}\n"
            )
        );
        let doc = Format::Ecs.render(&event).expect("renders");
        let out = lines("i", &event, &doc).expect("renders");
        let document: Value =
            serde_json::from_slice(out.split(|b| *b == b'\n').nth(1).expect("a document line"))
                .expect("json");
        assert_eq!(document["event"]["id"], "MCQODWN6NJC5VLCQIRWQTZXF4Q");
        assert_eq!(document["event"]["dataset"], "1password.itemusages");
    }

    #[test]
    fn item_statuses_map_to_outcomes() {
        let answer = json!({"errors": true, "items": [
            {"create": {"_id": "a", "status": 201}},
            {"create": {"_id": "b", "status": 409, "error": {"type": "version_conflict_engine_exception"}}},
            {"create": {"_id": "c", "status": 429, "error": {"type": "es_rejected_execution_exception"}}},
            {"create": {"_id": "d", "status": 503}},
            {"create": {"_id": "e", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad ip"}}},
        ]});
        let got = outcomes(
            &serde_json::to_vec(&answer).expect("json"),
            &["a", "b", "c", "d", "e"],
        )
        .expect("parses");
        assert_eq!(
            got,
            [
                ItemOutcome::Stored,
                ItemOutcome::AlreadyStored,
                ItemOutcome::Retry(429),
                ItemOutcome::Retry(503),
                ItemOutcome::Rejected(400, "mapper_parsing_exception: bad ip".into()),
            ]
        );
    }

    #[test]
    fn an_answer_that_does_not_match_what_was_sent_is_an_error() {
        let answer = br#"{"items": [{"create": {"_id": "x", "status": 201}}]}"#;
        assert!(outcomes(answer, &["a"]).is_err());
        assert!(outcomes(answer, &["x", "y"]).is_err());
        assert!(outcomes(b"not json", &["x"]).is_err());
    }
}
