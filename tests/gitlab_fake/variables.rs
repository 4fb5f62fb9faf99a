//! CI/CD variables of projects and groups: the model, its API shape, and create, find (with
//! `filter[environment_scope]`), update and delete as the variables endpoints do them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::reply::{self, Reply};
use super::request::Params;
use super::resources::Scope;
use super::validate;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariableType {
    EnvVar,
    File,
}

impl VariableType {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "env_var" => Some(Self::EnvVar),
            "file" => Some(Self::File),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::EnvVar => "env_var",
            Self::File => "file",
        }
    }
}

/// One stored variable.
#[derive(Clone, Debug)]
pub struct Variable {
    /// Creation order: lists are ordered by it, as GitLab orders by `id`.
    pub id: u64,
    pub key: String,
    pub value: String,
    pub variable_type: VariableType,
    pub protected: bool,
    pub masked: bool,
    pub hidden: bool,
    pub raw: bool,
    pub environment_scope: String,
    pub description: Option<String>,
}

impl Variable {
    /// As the API shows it: a hidden variable's value is `null`.
    pub fn to_api(&self) -> Value {
        let mut json = self.to_full();
        if self.hidden {
            json["value"] = Value::Null;
        }
        json
    }

    /// Everything, the value of a hidden variable included (for the tests' inspection).
    pub fn to_full(&self) -> Value {
        json!({
            "variable_type": self.variable_type.as_str(),
            "key": self.key,
            "value": self.value,
            "hidden": self.hidden,
            "protected": self.protected,
            "masked": self.masked,
            "raw": self.raw,
            "environment_scope": self.environment_scope,
            "description": self.description,
        })
    }
}

/// The variables of every project and group.
#[derive(Debug, Default)]
pub struct Store {
    last_id: u64,
    by_scope: BTreeMap<Scope, Vec<Variable>>,
}

/// The attributes a create or an update sets; `None` leaves one as it is (or its default).
#[derive(Debug, Default)]
pub struct Changes {
    pub key: Option<String>,
    pub value: Option<String>,
    pub variable_type: Option<VariableType>,
    pub protected: Option<bool>,
    pub masked: Option<bool>,
    pub masked_and_hidden: Option<bool>,
    pub raw: Option<bool>,
    pub environment_scope: Option<String>,
    pub description: Option<String>,
}

impl Changes {
    /// The parameters of `POST .../variables` (`create`) or `PUT .../variables/:key`, checked as
    /// Grape checks them: 400 `{"error": "key is missing, value is invalid"}`.
    pub fn from_params(params: &Params, create: bool) -> Result<Self, Reply> {
        let mut errors = Vec::new();
        let mut changes = Self::default();
        if create {
            changes.key = params.string("key", &mut errors);
            if !params.has("key") {
                errors.push("key is missing".into());
            }
        }
        changes.value = params.string("value", &mut errors);
        if create && !params.has("value") {
            errors.push("value is missing".into());
        }
        changes.protected = params.boolean("protected", &mut errors);
        changes.masked = params.boolean("masked", &mut errors);
        if create {
            changes.masked_and_hidden = params.boolean("masked_and_hidden", &mut errors);
        }
        changes.raw = params.boolean("raw", &mut errors);
        if let Some(text) = params.string("variable_type", &mut errors) {
            changes.variable_type = VariableType::parse(&text);
            if changes.variable_type.is_none() {
                errors.push("variable_type does not have a valid value".into());
            }
        }
        changes.environment_scope = params.string("environment_scope", &mut errors);
        changes.description = params.string("description", &mut errors);
        params.environment_scope_filter(&mut errors);
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(reply::bad_params(&errors))
        }
    }

    fn apply(&self, variable: &mut Variable) {
        if let Some(key) = &self.key {
            variable.key = key.trim().to_owned();
        }
        if let Some(value) = &self.value {
            variable.value = value.clone();
        }
        if let Some(t) = self.variable_type {
            variable.variable_type = t;
        }
        if let Some(protected) = self.protected {
            variable.protected = protected;
        }
        if let Some(masked) = self.masked {
            variable.masked = masked;
        }
        if self.masked_and_hidden == Some(true) {
            variable.masked = true;
            variable.hidden = true;
        }
        if let Some(raw) = self.raw {
            variable.raw = raw;
        }
        if let Some(scope) = &self.environment_scope {
            variable.environment_scope = scope.trim().to_owned();
        }
        if let Some(description) = &self.description {
            variable.description = Some(description.clone());
        }
    }
}

impl Store {
    pub fn list(&self, scope: Scope) -> &[Variable] {
        self.by_scope.get(&scope).map_or(&[], Vec::as_slice)
    }

    /// The one variable `key` names (in `environment_scope` when filtered): 404 `Variable Not
    /// Found` for none, 409 for several (`find_variable` of `API::Helpers::VariablesHelpers`).
    pub fn find(&self, scope: Scope, key: &str, filter: Option<&str>) -> Result<usize, Reply> {
        let matches: Vec<usize> = self
            .list(scope)
            .iter()
            .enumerate()
            .filter(|(_, v)| v.key == key && filter.is_none_or(|f| v.environment_scope == f))
            .map(|(i, _)| i)
            .collect();
        match matches.as_slice() {
            [] => Err(reply::not_found("Variable")),
            [one] => Ok(*one),
            _ => Err(reply::message(
                409,
                "There are multiple variables with provided parameters. Please use 'filter[environment_scope]'",
            )),
        }
    }

    pub fn get(&self, scope: Scope, index: usize) -> &Variable {
        &self.list(scope)[index]
    }

    /// A new variable from `changes` (defaults: `env_var`, scope `*`, every flag false).
    pub fn create(&mut self, scope: Scope, changes: &Changes) -> Result<Variable, Reply> {
        let mut variable = Variable {
            id: self.last_id + 1,
            key: String::new(),
            value: String::new(),
            variable_type: VariableType::EnvVar,
            protected: false,
            masked: false,
            hidden: false,
            raw: false,
            environment_scope: "*".into(),
            description: None,
        };
        changes.apply(&mut variable);
        validate::check(&variable, self.list(scope), None)?;
        self.last_id = variable.id;
        self.by_scope
            .entry(scope)
            .or_default()
            .push(variable.clone());
        Ok(variable)
    }

    /// Applies `changes` to the variable at `index`, validated as a whole.
    pub fn update(
        &mut self,
        scope: Scope,
        index: usize,
        changes: &Changes,
    ) -> Result<Variable, Reply> {
        let previous = self.get(scope, index).clone();
        let mut variable = previous.clone();
        changes.apply(&mut variable);
        validate::check(&variable, self.list(scope), Some(&previous))?;
        let list = self.by_scope.get_mut(&scope).expect("the variable exists");
        list[index] = variable.clone();
        Ok(variable)
    }

    pub fn remove(&mut self, scope: Scope, index: usize) -> Variable {
        let list = self.by_scope.get_mut(&scope).expect("the variable exists");
        list.remove(index)
    }
}
