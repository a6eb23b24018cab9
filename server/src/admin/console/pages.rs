//! The console's pages, rendered on the server ([`maud`]): a layout with
//! the navigation, and one view per page. Views only show what they are
//! given; the handlers in [`super`] gather it.

use maud::{DOCTYPE, Markup, html};
use tessera_raft::model::NodeState;

use crate::admin::screen::{bytes, duration, member_role};
use crate::admin::summary::{Severity, Summary};
use crate::admin::{JobReport, KeyCreated, KeyInfo};

/// What every page of a session knows.
pub(crate) struct Frame<'a> {
    /// The access key logged in.
    pub key: &'a str,
    /// Whether it administers the cluster.
    pub admin: bool,
    /// The session's CSRF token, for forms.
    pub csrf: &'a str,
    /// A message to show on top (an error when `error`).
    pub notice: Option<(&'a str, bool)>,
}

/// A key's role: what `admin`, `allow_create_bucket` say together.
pub(crate) fn role(admin: bool, allow_create_bucket: bool) -> &'static str {
    match (admin, allow_create_bucket) {
        (true, _) => "admin",
        (false, true) => "read-write",
        (false, false) => "read-only",
    }
}

fn head(title: &str) -> Markup {
    html! {
        (DOCTYPE)
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Tessera" }
            link rel="stylesheet" href="/console/static/console.css";
            script src="/console/static/console.js" defer {}
        }
    }
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A page of a session: navigation, notice, `body`.
pub(crate) fn layout(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (head(title))
        body {
            header {
                span.brand { "Tessera" }
                nav {
                    a href="/console/cluster" { "Cluster" }
                    a href="/console/buckets" { "Buckets" }
                    @if frame.admin { a href="/console/keys" { "Access keys" } }
                    a href="/console/jobs" { "Jobs" }
                }
                form.logout method="post" action="/console/logout" {
                    (csrf_field(frame.csrf))
                    span.who { (frame.key) " (" (if frame.admin { "admin" } else { "key" }) ")" }
                    button type="submit" { "Log out" }
                }
            }
            main {
                @if let Some((text, error)) = frame.notice {
                    p class=(if error { "notice error" } else { "notice" }) { (text) }
                }
                h1 { (title) }
                (body)
            }
        }
    }
}

/// The login page.
pub(crate) fn login(error: Option<&str>) -> Markup {
    html! {
        (head("Log in"))
        body.login {
            main {
                h1 { "Tessera console" }
                @if let Some(error) = error { p.notice.error { (error) } }
                form method="post" action="/console/login" {
                    label { "Access key" input name="access_key" autocomplete="username"; }
                    label { "Secret key" input name="secret_key" type="password" autocomplete="current-password"; }
                    p.hint { "Or leave the access key empty and give the admin token as the secret." }
                    button type="submit" { "Log in" }
                }
            }
        }
    }
}

/// A bare error page (a refused action, a page the key may not see).
pub(crate) fn refused(frame: &Frame<'_>, message: &str) -> Markup {
    layout(
        frame,
        "Refused",
        html! { p.notice.error { (message) } a href="/console/buckets" { "Back" } },
    )
}

fn severity_class(s: Severity) -> &'static str {
    s.name()
}

fn eta(secs: Option<f64>) -> String {
    secs.map_or_else(|| "—".to_owned(), duration)
}

fn bar(done: u64, remaining: u64) -> Markup {
    let whole = done + remaining;
    let share = done.saturating_mul(100).checked_div(whole).unwrap_or(100);
    html! { progress max="100" value=(share) { (share) "%" } }
}

fn jobs_table(jobs: &[JobReport]) -> Markup {
    html! {
        table.jobs {
            thead { tr { th { "Job" } th { "Progress" } th { "Queued" } th { "Done" } th { "Failed" } th { "Rate" } th { "ETA" } } }
            tbody {
                @for j in jobs {
                    tr {
                        td { (j.job) }
                        td { (bar(j.done, j.queued)) }
                        td.num { (j.queued) }
                        td.num { (j.done) }
                        td.num { (j.failed) @if j.failed_passes > 0 { " (" (j.failed_passes) " passes)" } }
                        td.num { (format!("{:.1}/s", j.items_per_sec)) " · " (bytes(j.bytes_per_sec)) "/s" }
                        td.num { (eta(j.eta_secs)) }
                    }
                }
            }
        }
    }
}

/// The cluster page: health, sites, members, nodes, stores, repair, jobs.
pub(crate) fn cluster(frame: &Frame<'_>, s: &Summary) -> Markup {
    let mut sites: Vec<&str> = s
        .status
        .stores
        .iter()
        .filter_map(|st| st.site.as_deref())
        .chain(s.nodes.iter().filter_map(|n| n.site.as_deref()))
        .collect();
    sites.sort_unstable();
    sites.dedup();
    let body = html! {
        p class=(format!("health {}", severity_class(s.health))) {
            "Health: " strong { (s.health.name()) }
            " · " (if s.status.ready { "ready" } else { "not ready" })
            " · " (s.status.buckets) " buckets · " (s.status.keys) " keys"
        }
        @if !s.problems.is_empty() {
            ul.problems {
                @for p in &s.problems {
                    li class=(severity_class(p.severity)) { strong { (p.alert) } ": " (p.message) }
                }
            }
        }
        section {
            h2 { "Sites" }
            @if sites.is_empty() { p { "One site (no sites configured)." } }
            @else { p { (sites.join(", ")) } }
        }
        section {
            h2 { "Metadata members" }
            p { "Leader: " (s.members.leader.map_or_else(|| "none".to_owned(), |l| l.to_string()))
                " · term " (s.members.term) " · quorum " (if s.members.has_quorum { "yes" } else { "no" }) }
            table {
                thead { tr { th { "Id" } th { "Address" } th { "Role" } th { "Lag" } } }
                tbody {
                    @for m in &s.members.members {
                        tr { td { (m.id) } td { (m.addr) } td { (member_role(&s.members, m)) }
                             td.num { (m.lag.map_or_else(|| "—".to_owned(), |l| l.to_string())) } }
                    }
                }
            }
        }
        @if !s.nodes.is_empty() {
            section {
                h2 { "Storage nodes" }
                table {
                    thead { tr { th { "Id" } th { "Address" } th { "Site" } th { "State" } th { "Use" } th { "Capacity" } } }
                    tbody {
                        @for n in &s.nodes {
                            tr {
                                td { (n.id) } td { (n.address) } td { (n.site.as_deref().unwrap_or("—")) }
                                td class=(match n.state { NodeState::Up => "ok", NodeState::Draining | NodeState::Suspect => "warning", NodeState::Down => "critical" }) {
                                    (format!("{:?}", n.state).to_lowercase())
                                }
                                td { (bar(n.used, n.capacity.saturating_sub(n.used))) " " (bytes(n.used as f64)) }
                                td.num { (bytes(n.capacity as f64)) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Stores" }
            table {
                thead { tr { th { "Store" } th { "Node" } th { "Site" } th { "State" } } }
                tbody {
                    @for st in &s.status.stores {
                        tr {
                            td { (st.id) } td { (st.node) } td { (st.site.as_deref().unwrap_or("—")) }
                            @let (class, state) = if st.lost { ("critical", "lost") } else if !st.up { ("critical", "down") } else if st.draining { ("warning", "draining") } else { ("ok", "up") };
                            td class=(class) { (state) }
                        }
                    }
                }
            }
        }
        @if let Some(r) = &s.repair {
            section {
                h2 { "Repair" }
                p {
                    (bar(r.done_shards, r.pending_shards)) " "
                    (r.pending_shards) " shards pending, " (r.done_shards) " rebuilt ("
                    (bytes(r.bytes_rebuilt as f64)) "), " (format!("{:.1}", r.shards_per_sec)) " shards/s, ETA " (eta(r.eta_secs))
                }
                @if r.at_risk.is_empty() { p { "No degraded segments." } }
                @else {
                    table {
                        thead { tr { th { "Degraded segments" } th { "Shards they can still lose" } } }
                        tbody { @for a in &r.at_risk { tr { td.num { (a.segments) } td.num { (a.redundancy_left) } } } }
                    }
                }
            }
        }
        @if let Some(r) = &s.replication {
            section {
                h2 { "Site replication" }
                @if r.done { p { "Every site holds its copy of every object." } }
                @else {
                    p {
                        (bar(r.done_shards, r.pending_shards)) " "
                        (r.pending_shards) " shards to copy, " (bytes(r.bytes_per_sec)) "/s, ETA " (eta(r.eta_secs))
                    }
                    table {
                        thead { tr { th { "Site" } th { "Lacks (segments)" } th { "Bytes" } th { "Oldest behind" } } }
                        tbody {
                            @for site in &r.sites {
                                tr {
                                    td { (site.site) } td.num { (site.segments) }
                                    td.num { (bytes(site.bytes as f64)) } td.num { (format!("{:.0} s", site.lag_secs)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Background jobs" }
            (jobs_table(&s.status.jobs))
        }
    };
    layout(frame, "Cluster", body)
}

/// The jobs page.
pub(crate) fn jobs(frame: &Frame<'_>, jobs: &[JobReport]) -> Markup {
    layout(
        frame,
        "Jobs",
        html! {
            p.hint { "Repair, scrub, GC, sweep, lifecycle and evacuation run on the metadata leader; rates over the last minute." }
            (jobs_table(jobs))
        },
    )
}

/// One bucket of the list.
pub(crate) struct BucketRow {
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created: String,
    /// Objects and bytes counted (from the first page of a listing).
    pub usage: Option<(u64, u64, bool)>,
    /// Its versioning state.
    pub versioning: Option<String>,
}

/// The bucket list, with the form creating one.
pub(crate) fn buckets(frame: &Frame<'_>, rows: &[BucketRow]) -> Markup {
    let body = html! {
        form.inline method="post" action="/console/buckets" {
            (csrf_field(frame.csrf))
            input name="bucket" placeholder="new-bucket-name" required;
            button type="submit" { "Create bucket" }
        }
        table {
            thead { tr { th { "Bucket" } th { "Created" } th { "Objects" } th { "Size" } th { "Versioning" } } }
            tbody {
                @for b in rows {
                    tr {
                        td { a href=(format!("/console/bucket?name={}", query_escape(&b.name))) { (b.name) } }
                        td { (b.created) }
                        @match b.usage {
                            Some((count, size, more)) => {
                                td.num { (count) @if more { "+" } }
                                td.num { (bytes(size as f64)) @if more { "+" } }
                            }
                            None => { td { "—" } td { "—" } }
                        }
                        td { (b.versioning.as_deref().unwrap_or("—")) }
                    }
                }
            }
        }
        @if rows.is_empty() { p { "No buckets this key may see." } }
    };
    layout(frame, "Buckets", body)
}

/// What one bucket page shows.
pub(crate) struct Listing {
    /// The bucket.
    pub bucket: String,
    /// The prefix browsed.
    pub prefix: String,
    /// Sub-prefixes ("folders").
    pub prefixes: Vec<String>,
    /// Objects: key, size, last modified.
    pub objects: Vec<(String, u64, String)>,
    /// The token of the next page, if truncated.
    pub next: Option<String>,
    /// The versioning state (`Enabled`, `Suspended`, none).
    pub versioning: Option<String>,
}

/// `text` escaped for a URL query value.
pub(crate) fn query_escape(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn bucket_link(bucket: &str, prefix: &str) -> String {
    format!(
        "/console/bucket?name={}&prefix={}",
        query_escape(bucket),
        query_escape(prefix)
    )
}

/// A bucket's objects under a prefix, with upload and versioning forms.
pub(crate) fn bucket(frame: &Frame<'_>, l: &Listing) -> Markup {
    let parent = l
        .prefix
        .trim_end_matches('/')
        .rsplit_once('/')
        .map_or("", |(p, _)| p);
    let up = if parent.is_empty() {
        String::new()
    } else {
        format!("{parent}/")
    };
    let enabled = l.versioning.as_deref() == Some("Enabled");
    let body = html! {
        p.crumbs {
            a href="/console/buckets" { "Buckets" } " / "
            a href=(bucket_link(&l.bucket, "")) { (l.bucket) } " / " (l.prefix)
        }
        div.actions {
            form.inline method="post" enctype="multipart/form-data"
                action=(format!("/console/upload?bucket={}&prefix={}", query_escape(&l.bucket), query_escape(&l.prefix))) {
                (csrf_field(frame.csrf))
                input type="file" name="file" required;
                button type="submit" { "Upload" }
            }
            form.inline method="post" action="/console/versioning" {
                (csrf_field(frame.csrf))
                input type="hidden" name="bucket" value=(l.bucket);
                input type="hidden" name="status" value=(if enabled { "Suspended" } else { "Enabled" });
                span { "Versioning: " strong { (l.versioning.as_deref().unwrap_or("off")) } " " }
                button type="submit" { (if enabled { "Suspend versioning" } else { "Enable versioning" }) }
            }
        }
        table.objects {
            thead { tr { th { "Name" } th { "Size" } th { "Last modified" } } }
            tbody {
                @if !l.prefix.is_empty() {
                    tr { td { a href=(bucket_link(&l.bucket, &up)) { "../" } } td {} td {} }
                }
                @for p in &l.prefixes {
                    tr { td { a.prefix href=(bucket_link(&l.bucket, p)) { (p.strip_prefix(l.prefix.as_str()).unwrap_or(p)) } } td {} td {} }
                }
                @for (key, size, modified) in &l.objects {
                    tr {
                        td { a.object href=(format!("/console/object?bucket={}&key={}", query_escape(&l.bucket), query_escape(key))) download {
                            (key.strip_prefix(l.prefix.as_str()).unwrap_or(key)) } }
                        td.num { (bytes(*size as f64)) }
                        td { (modified) }
                    }
                }
            }
        }
        @if l.prefixes.is_empty() && l.objects.is_empty() { p { "Nothing here." } }
        @if let Some(next) = &l.next {
            a href=(format!("{}&token={}", bucket_link(&l.bucket, &l.prefix), query_escape(next))) { "Next page →" }
        }
    };
    layout(frame, &l.bucket, body)
}

/// The access keys, with the forms creating and deleting keys and setting grants.
pub(crate) fn keys(frame: &Frame<'_>, keys: &[KeyInfo], created: Option<&KeyCreated>) -> Markup {
    let body = html! {
        @if let Some(c) = created {
            div.created {
                p { "Key " strong { (c.name) } " created. Its secret is shown only now:" }
                dl { dt { "Access key" } dd { code.access { (c.access_key) } }
                     dt { "Secret key" } dd { code.secret { (c.secret_key) } } }
            }
        }
        form.inline method="post" action="/console/keys" {
            (csrf_field(frame.csrf))
            input name="name" placeholder="name" required;
            select name="role" {
                option value="read-only" { "read-only" }
                option value="read-write" { "read-write" }
                option value="admin" { "admin" }
            }
            button type="submit" { "Create key" }
        }
        p.hint { "admin: everything, this console's key pages included · read-write: may create buckets (owning them) and use its grants · read-only: only its grants, no new buckets." }
        table {
            thead { tr { th { "Access key" } th { "Name" } th { "Role" } th { "Grants" } th {} } }
            tbody {
                @for k in keys {
                    tr {
                        td { code { (k.access_key) } }
                        td { (k.name) }
                        td { (role(k.admin, k.allow_create_bucket)) }
                        td {
                            @for g in &k.grants {
                                span.grant { (g.bucket) ": "
                                    (if g.owner { "owner" } else if g.write && g.read { "read-write" } else if g.write { "write" } else if g.read { "read" } else { "none" }) }
                            }
                        }
                        td {
                            @if k.access_key != frame.key {
                                form.inline method="post" action="/console/keys/delete" data-confirm="Delete this key?" {
                                    (csrf_field(frame.csrf))
                                    input type="hidden" name="access_key" value=(k.access_key);
                                    button.danger type="submit" { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Grant a key access to a bucket" }
        form.inline method="post" action="/console/grants" {
            (csrf_field(frame.csrf))
            select name="access_key" { @for k in keys { option value=(k.access_key) { (k.name) " (" (k.access_key) ")" } } }
            input name="bucket" placeholder="bucket" required;
            label { input type="checkbox" name="read" value="on"; " read" }
            label { input type="checkbox" name="write" value="on"; " write" }
            label { input type="checkbox" name="owner" value="on"; " owner" }
            button type="submit" { "Set grant" }
        }
    };
    layout(frame, "Access keys", body)
}
