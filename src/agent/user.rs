//! `run_config.user`: `uid[:gid]`, `name[:group]`, resolved against the sandbox's own
//! `/etc/passwd` and `/etc/group` (the agent runs inside the sandbox, so `/` is its root).

use std::path::Path;

/// A resolved user to run a command as.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
    pub home: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "user {0:?} is not in this sandbox's /etc/passwd; pass a numeric uid[:gid] or create the user in the image"
    )]
    UnknownUser(String),
    #[error(
        "group {0:?} is not in this sandbox's /etc/group; pass a numeric gid or create the group in the image"
    )]
    UnknownGroup(String),
    #[error("user {0:?} is empty or malformed; expected uid[:gid] or name[:group]")]
    Malformed(String),
}

impl ResolvedUser {
    /// Variables a login would set, applied unless the request overrides them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut vars = Vec::new();
        if let Some(home) = &self.home {
            vars.push(("HOME", home.clone()));
        }
        if let Some(name) = &self.name {
            vars.push(("USER", name.clone()));
            vars.push(("LOGNAME", name.clone()));
        }
        vars
    }
}

/// Resolves `spec` against the account databases under `root`.
pub fn resolve_user(spec: &str, root: &Path) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() || group_part == Some("") {
        return Err(UserError::Malformed(spec.to_string()));
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let entry = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .filter(|fields| fields.len() >= 6)
        .find(|fields| match user_part.parse::<u32>() {
            Ok(uid) => fields[2].parse() == Ok(uid),
            Err(_) => fields[0] == user_part,
        });
    let mut user = match (user_part.parse::<u32>(), entry) {
        (_, Some(fields)) => ResolvedUser {
            uid: fields[2]
                .parse()
                .map_err(|_| UserError::Malformed(spec.into()))?,
            gid: fields[3]
                .parse()
                .map_err(|_| UserError::Malformed(spec.into()))?,
            name: Some(fields[0].to_string()),
            home: Some(fields[5].to_string()).filter(|h| !h.is_empty()),
        },
        // A numeric uid without an account is valid (as in OCI images); its group is root's.
        (Ok(uid), None) => ResolvedUser {
            uid,
            gid: 0,
            name: None,
            home: None,
        },
        (Err(_), None) => return Err(UserError::UnknownUser(user_part.to_string())),
    };
    if let Some(group) = group_part {
        user.gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => lookup_group(group, root)?,
        };
    }
    Ok(user)
}

fn lookup_group(name: &str, root: &Path) -> Result<u32, UserError> {
    std::fs::read_to_string(root.join("etc/group"))
        .unwrap_or_default()
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 3 && fields[0] == name)
        .and_then(|fields| fields[2].parse().ok())
        .ok_or_else(|| UserError::UnknownGroup(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_resolve_against_the_sandbox_databases() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let app = resolve_user("app", root.path()).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.home.as_deref()),
            (1000, 1001, Some("/home/app"))
        );
        assert_eq!(resolve_user("app:staff", root.path()).unwrap().gid, 50);
        assert_eq!(
            resolve_user("1000", root.path()).unwrap().name.as_deref(),
            Some("app")
        );
        let anon = resolve_user("4242:7", root.path()).unwrap();
        assert_eq!((anon.uid, anon.gid, anon.name), (4242, 7, None));
        assert!(matches!(
            resolve_user("ghost", root.path()),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_user("app:nogroup", root.path()),
            Err(UserError::UnknownGroup(_))
        ));
        assert!(matches!(
            resolve_user(":1", root.path()),
            Err(UserError::Malformed(_))
        ));
    }
}
