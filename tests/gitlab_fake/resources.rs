//! Projects and groups: how they are addressed (numeric id or URL-encoded path) and shown.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Whose variables: a project's or a group's, by numeric id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Project(u64),
    Group(u64),
}

#[derive(Clone, Debug)]
pub struct Project {
    pub id: u64,
    pub path_with_namespace: String,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: u64,
    pub full_path: String,
}

/// Projects and groups, addressed as the API's `:id` does.
#[derive(Debug, Default)]
pub struct Directory {
    pub projects: BTreeMap<u64, Project>,
    pub groups: BTreeMap<u64, Group>,
}

/// The fixed timestamp every project and group was created at.
const CREATED_AT: &str = "2024-01-15T09:30:00.000Z";

impl Directory {
    /// `:id` of `/projects/:id`: a number, or a path (already percent-decoded), case-insensitive.
    pub fn project(&self, id: &str) -> Option<&Project> {
        match id.parse::<u64>() {
            Ok(n) => self.projects.get(&n),
            Err(_) => self
                .projects
                .values()
                .find(|p| p.path_with_namespace.eq_ignore_ascii_case(id)),
        }
    }

    /// `:id` of `/groups/:id`.
    pub fn group(&self, id: &str) -> Option<&Group> {
        match id.parse::<u64>() {
            Ok(n) => self.groups.get(&n),
            Err(_) => self
                .groups
                .values()
                .find(|g| g.full_path.eq_ignore_ascii_case(id)),
        }
    }

    pub fn exists(&self, scope: Scope) -> bool {
        match scope {
            Scope::Project(id) => self.projects.contains_key(&id),
            Scope::Group(id) => self.groups.contains_key(&id),
        }
    }

    fn group_by_path(&self, path: &str) -> Option<&Group> {
        self.groups.values().find(|g| g.full_path == path)
    }

    /// A project as `GET /projects/:id` shows it to a member.
    pub fn project_json(&self, project: &Project, base_url: &str) -> Value {
        let full = &project.path_with_namespace;
        let (namespace, path) = full.rsplit_once('/').unwrap_or(("", full));
        let web_url = format!("{base_url}/{full}");
        let host = base_url.split("://").nth(1).unwrap_or(base_url);
        let namespace_json = match self.group_by_path(namespace) {
            Some(group) => {
                let mut json = self.namespace_json(group, base_url);
                json["kind"] = json!("group");
                json
            }
            None => json!({
                "id": null,
                "name": namespace,
                "path": namespace,
                "kind": "user",
                "full_path": namespace,
                "parent_id": null,
                "avatar_url": null,
                "web_url": format!("{base_url}/{namespace}"),
            }),
        };
        json!({
            "id": project.id,
            "description": null,
            "name": path,
            "name_with_namespace": full.replace('/', " / "),
            "path": path,
            "path_with_namespace": full,
            "created_at": CREATED_AT,
            "default_branch": "main",
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": format!("git@{host}:{full}.git"),
            "http_url_to_repo": format!("{web_url}.git"),
            "web_url": web_url,
            "readme_url": null,
            "forks_count": 0,
            "avatar_url": null,
            "star_count": 0,
            "last_activity_at": CREATED_AT,
            "namespace": namespace_json,
            "visibility": "private",
            "archived": false,
            "empty_repo": false,
            "_links": {
                "self": format!("{base_url}/api/v4/projects/{}", project.id),
            },
        })
    }

    fn namespace_json(&self, group: &Group, base_url: &str) -> Value {
        let (parent, path) = group
            .full_path
            .rsplit_once('/')
            .unwrap_or(("", &group.full_path));
        json!({
            "id": group.id,
            "name": path,
            "path": path,
            "kind": "group",
            "full_path": group.full_path,
            "parent_id": self.group_by_path(parent).map(|g| g.id),
            "avatar_url": null,
            "web_url": format!("{base_url}/groups/{}", group.full_path),
        })
    }

    /// A group as `GET /groups/:id` shows it (with its projects, as `with_projects` defaults).
    pub fn group_json(&self, group: &Group, base_url: &str) -> Value {
        let (parent, path) = group
            .full_path
            .rsplit_once('/')
            .unwrap_or(("", &group.full_path));
        let prefix = format!("{}/", group.full_path);
        let projects: Vec<Value> = self
            .projects
            .values()
            .filter(|p| {
                p.path_with_namespace
                    .strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.contains('/'))
            })
            .map(|p| self.project_json(p, base_url))
            .collect();
        json!({
            "id": group.id,
            "web_url": format!("{base_url}/groups/{}", group.full_path),
            "name": path,
            "path": path,
            "description": "",
            "visibility": "private",
            "full_name": group.full_path.replace('/', " / "),
            "full_path": group.full_path,
            "parent_id": self.group_by_path(parent).map(|g| g.id),
            "created_at": CREATED_AT,
            "projects": projects,
            "shared_projects": [],
        })
    }
}
