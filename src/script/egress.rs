//! `Sandbox.egress_log([offset])`: the decisions of the local backend's egress proxy on the
//! sandbox's connections, as `#{entries, next_offset}`; asking again from `next_offset`
//! returns only what came since (`langsmith sandbox egress-log --follow` does so).

use rhai::{Dynamic, Engine};

use super::bridge::{ScriptResult, user_error};
use super::sandbox::SandboxObj;

fn egress_log(s: &SandboxObj, offset: i64) -> ScriptResult<Dynamic> {
    let offset = u64::try_from(offset).map_err(|_| {
        user_error(format!(
            "egress_log: offset must be 0 or more (got {offset})"
        ))
    })?;
    let name = s.data.name.clone();
    let page = s.bridge.call("reading the egress log", |c| async move {
        c.egress_log(&name, offset).await
    })?;
    rhai::serde::to_dynamic(page)
}

pub fn register(engine: &mut Engine) {
    engine
        .register_fn("egress_log", |s: &mut SandboxObj| egress_log(s, 0))
        .register_fn("egress_log", |s: &mut SandboxObj, offset: i64| {
            egress_log(s, offset)
        });
}
