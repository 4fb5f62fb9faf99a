//! The built-in `gitlab-ci` destination: item field values as GitLab CI/CD variables.
//!
//! It writes the variables of one project or one group through the REST API (`/api/v4`), marks
//! the variables it manages in their description, refuses values GitLab could not mask when
//! asked to mask, writes only what changed, and reads the variables back for drift.
//!
//! Config: `api-url` (default `https://gitlab.com`; for a self-managed GitLab its base URL, to
//! which the plugin appends `/api/v4`; grant its origin), `token` (required, a secret, usually an
//! `op://` reference: a project or group access token or a personal access token with the `api`
//! scope, and the Maintainer role on the project or the Owner role on the group; sent as
//! `PRIVATE-TOKEN`), exactly one of `project` and `group` (a numeric id, or a full path such as
//! `group/subgroup/project`, URL-encoded in request paths), `field` (the field id or label whose
//! value is written; default: the item's first `CONCEALED` field that has a value), `key` (the
//! variable's key, a template; default `{{title | upper_snake}}`: `Orders DB (prod)` gives
//! `ORDERS_DB_PROD`), or instead of both `fields` (`FIELD=KEY,FIELD=KEY`: several variables per
//! item, each KEY a literal key or a template; `fields` with `key` or `field` is a config error),
//! `masked` (default `false`), `protected` (default `false`: jobs of every branch get it),
//! `raw` (default `true`), `environment-scope` (default `*`), `variable-type` (`env_var`, the
//! default, or `file`), `description` (text written before the marker, at most 200 characters;
//! default: the marker alone), `adopt` (default `false`), `on-delete` (`delete`, the default, or
//! `keep`). Unknown keys are refused, naming the key.
//!
//! Keys follow GitLab's rule: `A-Z`, `a-z`, `0-9` and `_`, 1 to 255 characters. A literal key and
//! the literal text of a key template are checked when the config loads (`misconfigured`); a key
//! rendered for an item is checked per item (`permanent`, naming the item, the key and the rule).
//!
//! `raw = true` by default because GitLab expands `$NAME` references in the value of a variable
//! that is not raw: a generated password holding `$` would reach jobs changed, or empty. opsync
//! writes values verbatim; a raw variable can also be masked with more characters.
//!
//! Masking: with `masked = true`, every value of an item is checked before any request for the
//! item against GitLab's rule (its `Ci::Maskable` validation): a raw variable's value needs at
//! least 8 characters and no whitespace (no space, tab or line break: `\A\S{8,}\z`); an expanded
//! one (`raw = false`) at least 8 characters of `A-Z a-z 0-9 _ + = / @ : . ~ -`. A value that
//! breaks it is a `misconfigured` error naming the item, the field, the key and the rule, never
//! the value, and nothing of the item is written: a variable is never sent unmasked.
//!
//! Ownership: the description of every variable opsync writes holds the marker
//! `managed by opsync: item <ITEM_ID>` (after the `description` text, in parentheses, when it
//! is set). A variable of the same key and environment scope without the marker is not written
//! over unless `adopt = true` (a `permanent` error naming the key, the scope and `adopt`); an
//! adopted variable is written once to carry the marker. One marked for another item is never
//! written nor deleted (`permanent`, naming both items). Literal keys in `fields` are the same
//! for every item of the route: give such a route one item, or put `{{title | upper_snake}}` in
//! the keys.
//!
//! Requests per event, for each variable of the item (an item's variables are all read and their
//! owners checked before any is written; paths under `/api/v4/projects/:id/variables` or
//! `/api/v4/groups/:id/variables`):
//! - created, updated, rotated, repaired: `GET .../variables/:key?filter[environment_scope]=SCOPE`;
//!   then nothing when it holds the value, the attributes and the marker already (the receipt
//!   says unchanged), `POST .../variables` when it is absent, else
//!   `PUT .../variables/:key?filter[environment_scope]=SCOPE`: 1 or 2 requests per variable;
//! - deleted, `on-delete = delete`: the GET, then for opsync's own variable of the item
//!   `DELETE .../variables/:key?filter[environment_scope]=SCOPE` (a 404 means already gone): 1 or
//!   2 per variable; `on-delete = keep`: none. The deletion of a renamed item's old key
//!   (`renamed-to`) deletes a variable only when its key follows the title (`{{title}}` in the
//!   template), since a key that does not is still the item's current variable;
//! - read-back: one GET per variable.
//!
//! The host allows 16 HTTP requests per event (summed over a batch): an item of more than 8
//! variables needs a larger request limit in the plugin's `limits`.
//!
//! Receipts and drift: GitLab returns variables' values to the token's role, so the fingerprint
//! is the kit's digest of the canonical JSON of `{KEY: {value, variable_type, masked, protected,
//! raw, environment_scope}}` over the item's variables, as GitLab answered the write (or the read
//! that found them unchanged). `read-back` GETs each of them: any absent is `absent`, else
//! `present` with the fingerprint of the same shape, so an edit of a value or an attribute in
//! GitLab, or a deletion, shows as drift (the description does not count).
//!
//! Errors and rate limits: a 429 is retryable after the delay it asks (`Retry-After`, else
//! `RateLimit-Reset`, a Unix time, else a minute; at least 1 s), and the call then makes no
//! further request: every event of the batch not yet done fails with the same hint, so a
//! throttled batch does not storm. 401 (a revoked or expired token) and 403 are `misconfigured`
//! (the route pauses and nothing is dead-lettered; a new token or role lets it go on), naming the
//! method, the path and GitLab's `message`, never the token; a 404 on the project or group itself
//! is `misconfigured`, naming it; both stop the call the same way. A 400 (validation) is
//! `permanent` with GitLab's message, which names attributes, not values (a value it echoed would
//! be redacted); 5xx are retryable (with their `Retry-After`). A variable created by someone else
//! between the read and the POST (400 `has already been taken`) or deleted before the PUT (404)
//! is retryable: the next attempt reads it again. A GitLab that ignores `filter[...]` and answers
//! the key's variable of another scope is taken as having none in this scope. Hidden variables
//! (`masked_and_hidden`) are not supported: GitLab does not return their value.

mod api;
mod halt;
mod keys;
mod masking;
mod ownership;
mod settings;
mod values;
mod variable;

use api::Api;
use halt::Halt;
use keys::is_variable_key;
use opsync_destination_kit::log::{Level, log};
use opsync_destination_kit::template::Named;
use opsync_destination_kit::{
    ChangeKind, Destination, Found, ItemEvent, ItemRef, PluginError, Receipt, deliver_each,
    fingerprint, permanent, receipt, receipt_with_fingerprint,
};
use settings::{OnDelete, Settings};
use variable::Variable;

/// `item `TITLE` (ID)`, for messages.
pub(crate) fn describe(item: &impl Named) -> String {
    format!("item `{}` ({})", item.title(), item.item_id())
}

/// The fingerprint of an item's variables, on write and on read-back alike.
fn fingerprint_of(variables: &[Variable]) -> String {
    fingerprint::digest(&variable::fingerprint_input(variables))
}

/// Config and client of one call (the token revealed once).
struct Context {
    settings: Settings,
    api: Api,
}

fn setup() -> Result<Context, PluginError> {
    let settings = Settings::load()?;
    let api = Api {
        endpoint: settings.api_url.clone(),
        token: opsync_destination_kit::settings::secret("token")?.reveal(),
        target: settings.target.clone(),
        halt: Halt::default(),
    };
    Ok(Context { settings, api })
}

/// What the item's variables must be: keys, values and the masking rule, all checked before any
/// request. Values are revealed here.
fn wanted_variables(ctx: &Context, event: &ItemEvent) -> Result<Vec<Variable>, PluginError> {
    let settings = &ctx.settings;
    let attributes = &settings.attributes;
    let item = describe(event);
    let description = ownership::description(attributes.description.as_deref(), &event.item.id);
    let mut wanted: Vec<Variable> = Vec::with_capacity(settings.entries.len());
    for entry in &settings.entries {
        // Always named: only a deletion can skip a key.
        let Some(key) = entry.key(event)? else {
            continue;
        };
        entry.check(event, &key)?;
        if wanted.iter().any(|w| w.key == key) {
            return Err(permanent(format!(
                "{item}: two `fields` entries give the key `{key}`; change their keys"
            )));
        }
        let selected = values::select(event, entry)?;
        if attributes.masked {
            masking::check(
                &item,
                &selected.label,
                &key,
                &selected.value,
                attributes.raw,
            )?;
        }
        wanted.push(Variable::wanted(
            key,
            selected.value,
            attributes,
            description.clone(),
        ));
    }
    Ok(wanted)
}

fn write(ctx: &Context, event: &ItemEvent) -> Result<Receipt, PluginError> {
    let scope = &ctx.settings.attributes.environment_scope;
    let item = describe(event);
    let wanted = wanted_variables(ctx, event)?;
    let keys: Vec<&str> = wanted.iter().map(|w| w.key.as_str()).collect();
    let location = ctx.api.receipt_location(&keys, scope);
    // Every variable read, and whose it is checked, before any is written.
    let mut found = Vec::with_capacity(wanted.len());
    for w in &wanted {
        let existing = ctx.api.get(&w.key, scope)?;
        if let Some(existing) = &existing {
            ownership::check_write(
                ctx.settings.adopt,
                &ctx.api.location(&w.key, scope),
                existing,
                &item,
                &event.item.id,
            )?;
        }
        found.push(existing);
    }
    let mut stored = Vec::with_capacity(wanted.len());
    let mut unchanged = true;
    for (w, existing) in wanted.iter().zip(found) {
        stored.push(match existing {
            Some(existing) if existing == *w => existing,
            Some(_) => {
                unchanged = false;
                ctx.api.update(w)?
            }
            None => {
                unchanged = false;
                ctx.api.create(w)?
            }
        });
    }
    Ok(receipt_with_fingerprint(
        location,
        None,
        unchanged,
        fingerprint_of(&stored),
    ))
}

fn delete(ctx: &Context, event: &ItemEvent) -> Result<Receipt, PluginError> {
    let scope = &ctx.settings.attributes.environment_scope;
    let item = describe(event);
    let mut keys = Vec::with_capacity(ctx.settings.entries.len());
    for entry in &ctx.settings.entries {
        // A key GitLab refuses can hold no variable: nothing to delete there.
        if let Some(key) = entry.key(event)?.filter(|k| is_variable_key(k)) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        log(
            Level::Info,
            &format!(
                "not deleting anything for {item}: its variables' keys do not follow its title"
            ),
        );
        return Ok(receipt(String::new(), None, true));
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let location = ctx.api.receipt_location(&key_refs, scope);
    if ctx.settings.on_delete == OnDelete::Keep {
        log(
            Level::Info,
            &format!("kept the variables of {item}, {location}: on-delete is keep"),
        );
        return Ok(receipt(location, None, true));
    }
    // Every variable read, and whose it is checked, before any is deleted.
    let mut ours = Vec::with_capacity(keys.len());
    for key in &keys {
        if let Some(existing) = ctx.api.get(key, scope)? {
            ownership::check_delete(
                &ctx.api.location(key, scope),
                &existing,
                &item,
                &event.item.id,
            )?;
            ours.push(key);
        }
    }
    let mut deleted = false;
    for key in ours {
        deleted |= ctx.api.delete(key, scope)?;
    }
    Ok(receipt(location, None, !deleted))
}

fn deliver(ctx: &Context, event: &ItemEvent) -> Result<Receipt, PluginError> {
    match event.kind {
        ChangeKind::Deleted => delete(ctx, event),
        ChangeKind::Created | ChangeKind::Updated | ChangeKind::Rotated | ChangeKind::Repaired => {
            write(ctx, event)
        }
    }
}

struct GitlabCi;

impl Destination for GitlabCi {
    fn validate() -> Result<(), PluginError> {
        Settings::load().map(|_| ())
    }

    fn deliver(event: ItemEvent) -> Result<Receipt, PluginError> {
        let mut results = Self::deliver_batch(vec![event]);
        results
            .pop()
            .unwrap_or_else(|| Err(permanent("the event was not delivered")))
    }

    /// In order, one result per event; the config is read and the token revealed once. After a
    /// 429, 401, 403 or a missing project or group, the events left fail without a request.
    fn deliver_batch(events: Vec<ItemEvent>) -> Vec<Result<Receipt, PluginError>> {
        deliver_each(events, setup, |ctx, event| deliver(ctx, &event))
    }

    /// The fingerprint of the item's variables; absent when any of them is.
    fn read_back(item: ItemRef) -> Result<Found, PluginError> {
        let ctx = setup()?;
        let scope = &ctx.settings.attributes.environment_scope;
        let mut stored = Vec::with_capacity(ctx.settings.entries.len());
        for entry in &ctx.settings.entries {
            let Some(key) = entry.key(&item)?.filter(|k| is_variable_key(k)) else {
                return Ok(Found::Absent);
            };
            match ctx.api.get(&key, scope)? {
                Some(variable) => stored.push(variable),
                None => return Ok(Found::Absent),
            }
        }
        Ok(Found::Present(fingerprint_of(&stored)))
    }
}

opsync_destination_kit::export_destination!(GitlabCi);

#[cfg(test)]
pub(crate) mod test_support {
    use crate::settings::Attributes;
    use crate::variable::Variable;

    pub(crate) use opsync_destination_kit::testing::event;

    /// The default attributes.
    pub(crate) fn attributes() -> Attributes {
        Attributes {
            variable_type: "env_var",
            masked: false,
            protected: false,
            raw: true,
            environment_scope: "*".into(),
            description: None,
        }
    }

    /// What opsync writes for item `itm1` with the default attributes.
    pub(crate) fn variable(key: &str, value: &str) -> Variable {
        Variable::wanted(
            key.into(),
            value.into(),
            &attributes(),
            crate::ownership::description(None, "itm1"),
        )
    }
}
