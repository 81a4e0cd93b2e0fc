//! The database role the server works as, and the check that it is as weak as it should be.
//!
//! `ledger serve` answers clients; if a bug (or a query someone smuggles past it) ran SQL of
//! its choosing, the log must still be safe. So the server does not connect as the owner of
//! the tables, who migrates them, but as [`SERVER_ROLE`] (migration `…_server_role.sql`):
//! it may read and append events and keep the read models, and owns nothing, so it can alter no
//! table, drop no trigger, and neither rewrite nor truncate the log. Three ways to be it:
//! - the embedded cluster: the role may log in on the cluster's private socket
//!   ([`allow_login_on_private_socket`]), and the server connects as it;
//! - `LEDGER_SERVER_DATABASE_URL`: a login of the operator's that is (or is a member of) it;
//! - otherwise the owner's connections switch to it (`SET ROLE`, [`server_pool_options`]).
//!
//! Whatever the way, the server checks what its connections can do before it serves
//! ([`serving_role_problems`]) and refuses to start as a role that could change the log.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::error::StoreError;

/// The role `ledger serve` works as. Made by a migration, with its grants.
pub const SERVER_ROLE: &str = "ledger_server";

/// Pool settings for the server when it connects as the owner: every connection switches to
/// [`SERVER_ROLE`] before it is used, as [`crate::pool_options`] sets its timeouts.
pub fn server_pool_options(max_connections: u32) -> PgPoolOptions {
    crate::store::pool_options_as(max_connections, Some(SERVER_ROLE))
}

/// Lets [`SERVER_ROLE`] log in. Only for the embedded cluster, whose socket only its own user
/// can reach (and whose TCP listener is off): there, logging in needs no password. Run as the
/// owner, after the migrations made the role.
pub async fn allow_login_on_private_socket(owner: &PgPool) -> Result<(), StoreError> {
    sqlx::query!("ALTER ROLE ledger_server LOGIN")
        .execute(owner)
        .await?;
    Ok(())
}

/// What the role of the pool's connections could do that the server must not, or lacks that
/// it needs; empty when it is fit to serve. Each problem is a sentence for an operator.
pub async fn serving_role_problems(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    let role = sqlx::query!(
        r#"SELECT current_user::text AS "name!",
                  r.rolsuper AS "superuser!",
                  (r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls OR r.rolreplication)
                      AS "administers!",
                  pg_has_role(current_user, t.relowner, 'USAGE') AS "acts_as_owner!",
                  EXISTS (SELECT FROM pg_class c
                          WHERE c.relowner = r.oid AND c.relpersistence <> 't') AS "owns_tables!",
                  EXISTS (SELECT FROM pg_proc p WHERE p.proowner = r.oid) AS "owns_functions!",
                  has_schema_privilege('public', 'CREATE') AS "creates_tables!",
                  (has_table_privilege(t.oid, 'UPDATE') OR has_table_privilege(t.oid, 'DELETE')
                   OR has_table_privilege(t.oid, 'TRUNCATE')
                   OR has_table_privilege(t.oid, 'TRIGGER')) AS "changes_events!",
                  (has_table_privilege(t.oid, 'SELECT') AND has_table_privilege(t.oid, 'INSERT'))
                      AS "appends_events!"
           FROM pg_roles r, pg_class t
           WHERE r.rolname = current_user AND t.oid = 'public.events'::regclass"#
    )
    .fetch_one(pool)
    .await?;
    let unreadable = sqlx::query_scalar!(
        r#"SELECT c.relname::text AS "name!" FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
             AND NOT has_table_privilege(c.oid, 'SELECT')
           ORDER BY c.relname"#
    )
    .fetch_all(pool)
    .await?;

    let name = &role.name;
    let mut problems = Vec::new();
    if role.superuser {
        problems.push(format!("{name} is a superuser"));
    }
    if role.administers {
        problems.push(format!(
            "{name} may create roles or databases, bypass row security or replicate"
        ));
    }
    if role.acts_as_owner {
        problems.push(format!(
            "{name} is (or acts as) the owner of the ledger's tables"
        ));
    }
    if role.owns_tables || role.owns_functions {
        problems.push(format!("{name} owns tables or functions of this database"));
    }
    if role.creates_tables {
        problems.push(format!("{name} may create objects in the schema public"));
    }
    if role.changes_events {
        problems.push(format!(
            "{name} may update, delete, truncate or add triggers to events"
        ));
    }
    if !role.appends_events {
        problems.push(format!("{name} may not read and append events"));
    }
    if !unreadable.is_empty() {
        problems.push(format!(
            "{name} may not read {} (a migration lacks its grants to {SERVER_ROLE})",
            unreadable.join(", ")
        ));
    }
    Ok(problems)
}
