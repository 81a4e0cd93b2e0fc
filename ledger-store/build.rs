// `sqlx::migrate!` embeds the migrations at compile time; without this a migration added
// later is not embedded until something else in the crate changes.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
