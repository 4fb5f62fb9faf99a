//! One step of a rotation against Connect and the plugin: locate the job's item, look at what
//! it holds, call the plugin, patch the item.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::connect::model::{PatchOp, is_connect_id};
use crate::domain::Step;
use crate::plugin::{NewValue, Plugin, Rotation, RotationStep};
use crate::rotation::RotationJob;
use crate::rotation::error::RotationError;
use crate::rotation::item::{self, Holds, PendingMeta, Target};
use crate::rotation::outcome::Outcome;
use crate::rotation::runner::{Located, Next, Rotator};
use crate::store::RunState;

/// What every step of one run works on.
struct StepCx<'a> {
    job: &'a RotationJob,
    plugin: &'a Plugin,
    run: &'a RunState,
    at: &'a Located,
    targets: &'a [Target],
}

impl StepCx<'_> {
    /// The rotation as the plugin sees it, under `key`, with `pending` values.
    fn rotation(&self, key: &str, pending: Vec<NewValue>) -> Rotation {
        Rotation {
            idempotency_key: key.to_owned(),
            vault: self.at.vault.clone(),
            item: item::for_plugin(&self.at.item),
            pending,
        }
    }
}

impl Rotator {
    pub(super) async fn locate(&self, job: &RotationJob) -> Result<Located, RotationError> {
        let cerr = |source| RotationError::Connect {
            job: job.name.clone(),
            source: Box::new(source),
        };
        let vault = if is_connect_id(&job.vault) {
            self.client.get_vault(&job.vault).await.map_err(cerr)?
        } else {
            self.client
                .find_vault_by_name(&job.vault)
                .await
                .map_err(cerr)?
        };
        let item = if is_connect_id(&job.item) {
            self.client.get_item(&vault.id, &job.item).await
        } else {
            self.client.find_item_by_title(&vault.id, &job.item).await
        }
        .map_err(cerr)?;
        Ok(Located {
            vault: vault.reference(),
            item,
        })
    }

    async fn patch(&self, cx: &StepCx<'_>, ops: &[PatchOp]) -> Result<(), RotationError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.client
            .patch_item(&cx.at.vault.id, &cx.at.item.id, ops)
            .await
            .map(drop)
            .map_err(|source| RotationError::Connect {
                job: cx.job.name.clone(),
                source: Box::new(source),
            })
    }

    async fn call(
        &self,
        cx: &StepCx<'_>,
        step: RotationStep,
        rotation: &Rotation,
        in_plugin: &mut Duration,
    ) -> Result<Vec<NewValue>, RotationError> {
        let t0 = Instant::now();
        let result = cx.plugin.rotate(step, rotation).await;
        *in_plugin += t0.elapsed();
        result.map_err(|source| RotationError::Plugin {
            job: cx.job.name.clone(),
            step: step_name(step),
            source: Box::new(source),
        })
    }

    /// Runs `run`'s step against the item as it is now, and says what comes next. Every step
    /// first looks at what the item holds, so a step that already happened is not done again.
    pub(super) async fn step(
        &self,
        job: &RotationJob,
        plugin: &Plugin,
        run: &RunState,
        rollback_reason: Option<&str>,
        in_plugin: &mut Duration,
    ) -> Result<Next, RotationError> {
        let at = self.locate(job).await?;
        let targets = item::targets(&at.item, &job.fields, &job.name)?;
        let holds = item::holds(&at.item, &run.key, &targets);
        let cx = StepCx {
            job,
            plugin,
            run,
            at: &at,
            targets: &targets,
        };
        match run.step {
            Step::Create => self.create(&cx, holds, in_plugin).await,
            Step::Set | Step::Test => self.set_or_test(&cx, holds, in_plugin).await,
            Step::Promote => self.promote(&cx, holds).await,
            Step::Finish => self.finish(&cx, in_plugin).await,
            Step::Rollback => {
                let reason = rollback_reason.unwrap_or("rolled back");
                self.roll_back(&cx, holds, reason, in_plugin).await
            }
        }
    }

    /// Create: the plugin makes the new values; they are written into the item as pending.
    async fn create(
        &self,
        cx: &StepCx<'_>,
        holds: Holds,
        in_plugin: &mut Duration,
    ) -> Result<Next, RotationError> {
        match holds {
            Holds::Pending => {
                tracing::info!(job = %cx.job.name, "the item already holds this rotation's pending value; create is not called again");
                return Ok(Next::Step(Step::Set));
            }
            Holds::Promoted => return Ok(Next::Step(Step::Finish)),
            Holds::Nothing => {}
        }
        let key = cx.run.key.as_str();
        let given = self
            .call(
                cx,
                RotationStep::Create,
                &cx.rotation(key, Vec::new()),
                in_plugin,
            )
            .await?;
        let given = self.match_targets(cx.job, cx.plugin, cx.targets, given)?;
        let ops = item::write_pending(
            &cx.at.item,
            cx.targets,
            &given,
            cx.job.recipe.as_ref(),
            &PendingMeta {
                key,
                job: &cx.job.name,
                slot: cx.run.slot,
                started: cx.run.started_at,
            },
        );
        self.patch(cx, &ops).await?;
        Ok(Next::Step(Step::Set))
    }

    /// Set applies the pending values on the target; test proves they work there. A test that
    /// fails for good rolls the rotation back.
    async fn set_or_test(
        &self,
        cx: &StepCx<'_>,
        holds: Holds,
        in_plugin: &mut Duration,
    ) -> Result<Next, RotationError> {
        match holds {
            Holds::Pending => {}
            Holds::Promoted => return Ok(Next::Step(Step::Finish)),
            Holds::Nothing => {
                return Ok(Next::Rollback(
                    "the item no longer holds this rotation's pending value (edited by someone else?)".into(),
                ));
            }
        }
        let testing = cx.run.step == Step::Test;
        let (which, then) = if testing {
            (RotationStep::Test, Step::Promote)
        } else {
            (RotationStep::Set, Step::Test)
        };
        let r = cx.rotation(&cx.run.key, item::pending(&cx.at.item, cx.targets));
        match self.call(cx, which, &r, in_plugin).await {
            Ok(_) => Ok(Next::Step(then)),
            Err(e) if testing && !e.is_retryable() => {
                Ok(Next::Rollback(format!("test failed: {e}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Promote: one PATCH makes the pending values current and the current ones previous.
    async fn promote(&self, cx: &StepCx<'_>, holds: Holds) -> Result<Next, RotationError> {
        match holds {
            Holds::Pending => {
                let ops = item::promote(&cx.at.item, cx.targets, &cx.run.key, Utc::now());
                self.patch(cx, &ops).await?;
                Ok(Next::Step(Step::Finish))
            }
            Holds::Promoted => Ok(Next::Step(Step::Finish)),
            Holds::Nothing => Err(RotationError::Inconsistent {
                job: cx.job.name.clone(),
                message: "promote: the item holds neither this rotation's pending value nor its promotion".into(),
            }),
        }
    }

    /// Finish: the plugin retires what is older than the values just promoted.
    async fn finish(
        &self,
        cx: &StepCx<'_>,
        in_plugin: &mut Duration,
    ) -> Result<Next, RotationError> {
        // The values just promoted are the item's current ones now.
        let r = cx.rotation(&cx.run.key, item::current(&cx.at.item, cx.targets));
        self.call(cx, RotationStep::Finish, &r, in_plugin).await?;
        // For the audit export's own events: which item version the rotation made current.
        self.events.rotated(
            cx.plugin.name(),
            &cx.at.vault.id,
            &cx.at.item.id,
            cx.at.item.version,
        );
        Ok(Next::Done(Outcome::Succeeded))
    }

    /// Rollback: the current values are set on the target again and the pending ones cleared;
    /// a rotation promoted before the decision was recorded is kept instead.
    async fn roll_back(
        &self,
        cx: &StepCx<'_>,
        holds: Holds,
        reason: &str,
        in_plugin: &mut Duration,
    ) -> Result<Next, RotationError> {
        if holds == Holds::Promoted {
            return Ok(Next::Step(Step::Finish));
        }
        let key = cx.run.key.as_str();
        let back_key = format!("{key}:rollback");
        let r = cx.rotation(&back_key, item::current(&cx.at.item, cx.targets));
        self.call(cx, RotationStep::Set, &r, in_plugin).await?;
        let ops = item::clear_pending(&cx.at.item, cx.targets, key);
        self.patch(cx, &ops).await?;
        Ok(Next::Done(Outcome::RolledBack {
            reason: reason.to_owned(),
        }))
    }

    /// The plugin's values keyed by target field id; a value for a field the job does not
    /// rotate is an error naming the plugin.
    fn match_targets(
        &self,
        job: &RotationJob,
        plugin: &Plugin,
        targets: &[Target],
        given: Vec<NewValue>,
    ) -> Result<Vec<NewValue>, RotationError> {
        given
            .into_iter()
            .map(|v| {
                let t = targets
                    .iter()
                    .find(|t| t.id == v.field || t.label.eq_ignore_ascii_case(&v.field))
                    .ok_or_else(|| RotationError::BadOutput {
                        job: job.name.clone(),
                        plugin: plugin.name().to_owned(),
                        message: format!(
                            "create returned a value for field {:?}, which the job does not rotate (it rotates {})",
                            v.field,
                            targets.iter().map(|t| t.label.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    })?;
                Ok(NewValue {
                    field: t.id.clone(),
                    value: v.value,
                })
            })
            .collect()
    }
}

fn step_name(step: RotationStep) -> &'static str {
    match step {
        RotationStep::Create => "create",
        RotationStep::Set => "set",
        RotationStep::Test => "test",
        RotationStep::Finish => "finish",
    }
}
