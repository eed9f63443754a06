//! post_db: the coaches' posts, the images they carry, likes and comments.
//!
//! `like_count` and `comment_count` are kept on the post, written in the same transaction
//! as the like or comment, so the feed reads them without counting. `author_hidden`
//! mirrors "the author is suspended or erased" from auth_db, because the feed must filter
//! on it without a cross-database join. The indexes follow the keyset orders: the feed
//! (visible posts, newest first), one author's posts, and a post's comments oldest first.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(crate::AuditOutboxTable("m0002_posts_audit_outbox")),
        ]
    }
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    AuthorId,
    Body,
    LikeCount,
    CommentCount,
    AuthorHidden,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PostMedia {
    Table,
    PostId,
    MediaId,
    Position,
}

#[derive(DeriveIden)]
enum Likes {
    Table,
    PostId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Comments {
    Table,
    Id,
    PostId,
    AuthorId,
    Body,
    CreatedAt,
}

#[derive(DeriveMigrationName)]
struct Initial;

fn post_fk(name: &str, from: impl IntoTableRef, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from, col)
        .to(Posts::Table, Posts::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Posts::Table)
                .if_not_exists()
                .col(ColumnDef::new(Posts::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Posts::AuthorId).uuid().not_null())
                .col(ColumnDef::new(Posts::Body).text().not_null())
                .col(
                    ColumnDef::new(Posts::LikeCount)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(
                    ColumnDef::new(Posts::CommentCount)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(
                    ColumnDef::new(Posts::AuthorHidden)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(
                    ColumnDef::new(Posts::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Posts::UpdatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_posts_feed", Posts::Table)
                .col(Posts::AuthorHidden)
                .col(Posts::CreatedAt)
                .col(Posts::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_posts_author", Posts::Table)
                .col(Posts::AuthorId)
                .col(Posts::CreatedAt)
                .col(Posts::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(PostMedia::Table)
                .if_not_exists()
                .col(ColumnDef::new(PostMedia::PostId).uuid().not_null())
                .col(ColumnDef::new(PostMedia::MediaId).uuid().not_null())
                .col(ColumnDef::new(PostMedia::Position).integer().not_null())
                .primary_key(
                    Index::create()
                        .col(PostMedia::PostId)
                        .col(PostMedia::Position),
                )
                .foreign_key(&mut post_fk(
                    "fk_post_media_post",
                    PostMedia::Table,
                    PostMedia::PostId,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_post_media_media", PostMedia::Table)
                .col(PostMedia::MediaId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Likes::Table)
                .if_not_exists()
                .col(ColumnDef::new(Likes::PostId).uuid().not_null())
                .col(ColumnDef::new(Likes::UserId).uuid().not_null())
                .col(
                    ColumnDef::new(Likes::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(Index::create().col(Likes::PostId).col(Likes::UserId))
                .foreign_key(&mut post_fk("fk_likes_post", Likes::Table, Likes::PostId))
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_likes_user", Likes::Table)
                .col(Likes::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Comments::Table)
                .if_not_exists()
                .col(ColumnDef::new(Comments::Id).uuid().not_null().primary_key())
                .col(ColumnDef::new(Comments::PostId).uuid().not_null())
                .col(ColumnDef::new(Comments::AuthorId).uuid().not_null())
                .col(ColumnDef::new(Comments::Body).text().not_null())
                .col(
                    ColumnDef::new(Comments::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .foreign_key(&mut post_fk(
                    "fk_comments_post",
                    Comments::Table,
                    Comments::PostId,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_comments_post", Comments::Table)
                .col(Comments::PostId)
                .col(Comments::CreatedAt)
                .col(Comments::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            crate::index("idx_comments_author", Comments::Table)
                .col(Comments::AuthorId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Comments::Table.into_iden(),
            Likes::Table.into_iden(),
            PostMedia::Table.into_iden(),
            Posts::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
