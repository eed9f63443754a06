//! post_db: its tables arrive with the posts domain (posts, likes, comments); the migrator exists from the start so
//! every database is versioned the same way.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}
