//! Posts, likes, comments and the feed over real HTTP, on both backends: who may do what,
//! likes under concurrency, keyset pages while posts are written, images on posts, text
//! bounds, deletion, suspended authors, anonymous readers, and the feed's statement count.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::helpers::{code, ws::WsClient, Account, Backend, TestApp};

/// How long a socket message may take.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

const ADMIN_EMAIL: &str = "root@posts.test";
const ADMIN_PASSWORD: &str = "admin password 123";

on_both_backends!(
    spawn = super::spawn;
    permissions_follow_the_rules,
    likes_count_once_under_concurrency,
    feed_pages_hold_while_posts_are_written,
    images_on_posts_are_the_authors_own,
    text_is_trimmed_and_bounded,
    deleting_a_post_takes_its_likes_and_comments,
    suspended_authors_leave_the_feed,
    anonymous_readers_read,
    a_feed_page_costs_the_same_statements_whatever_its_size,
    users_posts_in_a_list_cost_the_same_statements_whatever_its_size,
    deleting_a_post_races_cleanly_with_likes_and_comments,
    walked_pages_read_as_the_resolvers_read_them,
    a_read_validated_once_is_held_to_the_same_limits,
);

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.admin_email = Some(ADMIN_EMAIL.into());
        c.admin_password = Some(ADMIN_PASSWORD.into());
        // The statement counts below must not see a session check that expired while
        // a slow machine was still seeding.
        c.session_cache_ttl = std::time::Duration::from_secs(60);
    })
    .await
}

async fn admin(app: &TestApp) -> String {
    let body = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("admin login: {body}"))
        .to_string()
}

const CREATE: &str = "mutation($b: String!, $m: [ID!]) {
  createPost(body: $b, mediaIds: $m) { id body likeCount commentCount likedByMe author { id } media { id visibility } createdAt updatedAt }
}";
const UPDATE: &str = "mutation($id: ID!, $b: String, $m: [ID!]) {
  updatePost(id: $id, body: $b, mediaIds: $m) { id body media { id } }
}";
const DELETE: &str = "mutation($id: ID!) { deletePost(id: $id) }";
const LIKE: &str = "mutation($p: ID!) { likePost(postId: $p) { id likeCount likedByMe } }";
const UNLIKE: &str = "mutation($p: ID!) { unlikePost(postId: $p) { id likeCount likedByMe } }";
const COMMENT: &str = "mutation($p: ID!, $b: String!) { addComment(postId: $p, body: $b) { id body author { id } post { id commentCount } } }";
const DELETE_COMMENT: &str = "mutation($id: ID!) { deleteComment(id: $id) }";
const POST: &str = "query($id: ID!) { post(id: $id) { id body likeCount likedByMe commentCount comments { totalCount nodes { id body } } } }";
const FEED_IDS: &str = "query($f: Int, $a: String) { feed(first: $f, after: $a) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }";

async fn post(app: &TestApp, token: &str, body: &str) -> String {
    let r = app.gql_as(token, CREATE, json!({"b": body})).await;
    r["data"]["createPost"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createPost: {r}"))
        .to_string()
}

async fn comment(app: &TestApp, token: &str, post_id: &str, body: &str) -> String {
    let r = app
        .gql_as(token, COMMENT, json!({"p": post_id, "b": body}))
        .await;
    r["data"]["addComment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("addComment: {r}"))
        .to_string()
}

async fn feed_ids(app: &TestApp) -> Vec<String> {
    let r = app.gql(FEED_IDS, json!({"f": 100})).await;
    r["data"]["feed"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("feed: {r}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

fn png() -> Vec<u8> {
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0, 0, 0, 0]);
        c
    }
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    out.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
    out.extend(chunk(b"IDAT", &[0x78, 0x9C, 1, 2, 3]));
    out.extend(chunk(b"IEND", &[]));
    out
}

async fn upload(app: &TestApp, who: &Account, name: &str, kind: &str, bytes: Vec<u8>) -> String {
    let r = app.upload(&who.token, name, kind, bytes, None).await;
    assert_eq!(r["data"]["uploadMedia"]["visibility"], "PRIVATE", "{r}");
    r["data"]["uploadMedia"]["id"].as_str().unwrap().to_string()
}

async fn permissions_follow_the_rules(app: TestApp) {
    let admin = admin(&app).await;
    let coach = app.register("coach@example.com", "COACH").await;
    let other_coach = app.register("coach2@example.com", "COACH").await;
    let user = app.register("user@example.com", "USER").await;
    let commenter = app.register("commenter@example.com", "USER").await;

    // Coaches and admins post; users may not, anonymous callers must sign in.
    let p = post(&app, &coach.token, "Morning routine").await;
    let by_admin = post(&app, &admin, "Platform news").await;
    let r = app.gql_as(&user.token, CREATE, json!({"b": "hi"})).await;
    assert_eq!(code(&r), "FORBIDDEN", "{r}");
    let r = app.gql(CREATE, json!({"b": "hi"})).await;
    assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");

    // The author and admins edit; anyone else is refused, a missing post is NOT_FOUND.
    let r = app
        .gql_as(
            &coach.token,
            UPDATE,
            json!({"id": p, "b": "Evening routine"}),
        )
        .await;
    assert_eq!(r["data"]["updatePost"]["body"], "Evening routine", "{r}");
    let r = app
        .gql_as(&admin, UPDATE, json!({"id": p, "b": "Edited by an admin"}))
        .await;
    assert_eq!(r["data"]["updatePost"]["body"], "Edited by an admin", "{r}");
    for token in [&other_coach.token, &user.token] {
        let r = app
            .gql_as(token, UPDATE, json!({"id": p, "b": "mine now"}))
            .await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        let r = app.gql_as(token, DELETE, json!({"id": p})).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
    }
    let missing = uuid::Uuid::now_v7().to_string();
    for q in [DELETE, UPDATE] {
        let r = app
            .gql_as(&coach.token, q, json!({"id": missing, "b": "x"}))
            .await;
        assert_eq!(code(&r), "NOT_FOUND", "{r}");
    }
    let r = app.gql_as(&coach.token, LIKE, json!({"p": missing})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = app
        .gql_as(&coach.token, COMMENT, json!({"p": missing, "b": "x"}))
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = app
        .gql_as(&coach.token, DELETE, json!({"id": "nope"}))
        .await;
    assert_eq!(
        (code(&r), &r["errors"][0]["extensions"]["field"]),
        ("BAD_USER_INPUT", &json!("id"))
    );

    // A comment goes by its author, the post's author or an admin; not by others.
    let c1 = comment(&app, &commenter.token, &p, "first").await;
    let c2 = comment(&app, &commenter.token, &p, "second").await;
    let c3 = comment(&app, &commenter.token, &p, "third").await;
    for token in [&user.token, &other_coach.token] {
        let r = app.gql_as(token, DELETE_COMMENT, json!({"id": c1})).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
    }
    for (token, id) in [(&commenter.token, &c1), (&coach.token, &c2), (&admin, &c3)] {
        let r = app.gql_as(token, DELETE_COMMENT, json!({"id": id})).await;
        assert_eq!(r["data"]["deleteComment"], id.as_str(), "{r}");
    }
    let r = app.gql_as(&admin, DELETE_COMMENT, json!({"id": c3})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = app.gql(POST, json!({"id": p})).await;
    assert_eq!(r["data"]["post"]["commentCount"], 0, "{r}");
    assert_eq!(r["data"]["post"]["comments"]["nodes"], json!([]), "{r}");

    // Deletes answer the deleted id; the admin may delete anyone's post.
    let r = app.gql_as(&admin, DELETE, json!({"id": p})).await;
    assert_eq!(r["data"]["deletePost"], p.as_str(), "{r}");
    let r = app.gql_as(&admin, DELETE, json!({"id": by_admin})).await;
    assert_eq!(r["data"]["deletePost"], by_admin.as_str(), "{r}");
    assert!(feed_ids(&app).await.is_empty());

    // Every mutation left an audit entry naming what it acted on.
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.db(jolmood::config::Database::Admin).await;
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT action, target_type, target_id, outcome FROM audit_trail",
        ))
        .await
        .unwrap();
    let entries: HashSet<(String, String, Option<String>, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "action").unwrap(),
                r.try_get("", "target_type").unwrap(),
                r.try_get("", "target_id").unwrap(),
                r.try_get("", "outcome").unwrap(),
            )
        })
        .collect();
    for want in [
        ("createPost", "Post", Some(p.clone()), "success"),
        ("createPost", "Post", None, "FORBIDDEN"),
        ("updatePost", "Post", Some(p.clone()), "FORBIDDEN"),
        ("deletePost", "Post", Some(p.clone()), "success"),
        ("addComment", "Comment", Some(c1.clone()), "success"),
        ("deleteComment", "Comment", Some(c2.clone()), "success"),
        ("deleteComment", "Comment", Some(c1.clone()), "FORBIDDEN"),
        ("likePost", "Post", Some(missing.clone()), "NOT_FOUND"),
    ] {
        let want = (
            want.0.to_string(),
            want.1.to_string(),
            want.2,
            want.3.to_string(),
        );
        assert!(entries.contains(&want), "{want:?} missing from {entries:?}");
    }
}

async fn likes_count_once_under_concurrency(app: TestApp) {
    let coach = app.register("coach@example.com", "COACH").await;
    let fan = app.register("fan@example.com", "USER").await;
    let other = app.register("other@example.com", "USER").await;
    let p = post(&app, &coach.token, "Like me").await;

    let likes = (0..20).map(|_| app.gql_as(&fan.token, LIKE, json!({"p": p})));
    for r in futures_util::future::join_all(likes).await {
        assert_eq!(r["data"]["likePost"]["likedByMe"], true, "{r}");
        assert_eq!(r["data"]["likePost"]["likeCount"], 1, "{r}");
    }
    let r = app.gql_as(&other.token, LIKE, json!({"p": p})).await;
    assert_eq!(r["data"]["likePost"]["likeCount"], 2, "{r}");

    // likedByMe is the caller's own: not the fan's for others, false when anonymous.
    let r = app.gql_as(&coach.token, POST, json!({"id": p})).await;
    assert_eq!(
        (
            &r["data"]["post"]["likedByMe"],
            &r["data"]["post"]["likeCount"]
        ),
        (&json!(false), &json!(2)),
        "{r}"
    );
    let r = app.gql(POST, json!({"id": p})).await;
    assert_eq!(r["data"]["post"]["likedByMe"], false, "{r}");

    let unlikes = (0..20).map(|_| app.gql_as(&fan.token, UNLIKE, json!({"p": p})));
    for r in futures_util::future::join_all(unlikes).await {
        assert_eq!(r["data"]["unlikePost"]["likedByMe"], false, "{r}");
        assert_eq!(r["data"]["unlikePost"]["likeCount"], 1, "{r}");
    }
    let r = app.gql_as(&other.token, POST, json!({"id": p})).await;
    assert_eq!(
        (
            &r["data"]["post"]["likedByMe"],
            &r["data"]["post"]["likeCount"]
        ),
        (&json!(true), &json!(1)),
        "{r}"
    );
}

async fn feed_pages_hold_while_posts_are_written(app: TestApp) {
    let coach = app.register("coach@example.com", "COACH").await;
    let mut before = Vec::new();
    for i in 0..23 {
        before.push(post(&app, &coach.token, &format!("post {i}")).await);
    }
    before.reverse(); // newest first

    // Page through the feed while another author keeps posting.
    let writer = async {
        let other = app.register("writer@example.com", "COACH").await;
        for i in 0..10 {
            post(&app, &other.token, &format!("new {i}")).await;
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let r = app.gql(FEED_IDS, json!({"f": 4, "a": after})).await;
            let feed = &r["data"]["feed"];
            let nodes = feed["nodes"].as_array().unwrap_or_else(|| panic!("{r}"));
            seen.extend(nodes.iter().map(|n| n["id"].as_str().unwrap().to_string()));
            if feed["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = Some(feed["pageInfo"]["endCursor"].as_str().unwrap().to_string());
        }
        seen
    };
    let ((), seen) = tokio::join!(writer, reader);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no post twice: {seen:?}");
    let old: Vec<&String> = seen.iter().filter(|id| before.contains(id)).collect();
    assert_eq!(
        old,
        before.iter().collect::<Vec<_>>(),
        "every post that existed is seen once, newest first"
    );

    // A cursor that does not parse names its argument; first is bounded.
    let r = app.gql(FEED_IDS, json!({"a": "garbage"})).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "after", "{r}");
    let r = app.gql(FEED_IDS, json!({"f": 101})).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "first", "{r}");

    // An author's posts page the same way.
    let q = "query($u: ID!, $f: Int, $a: String) { user(id: $u) { posts(first: $f, after: $a) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } } }";
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = app
            .gql(q, json!({"u": coach.id, "f": 10, "a": after}))
            .await;
        let posts = &r["data"]["user"]["posts"];
        assert_eq!(posts["totalCount"], 23, "{r}");
        seen.extend(
            posts["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string()),
        );
        if posts["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = Some(posts["pageInfo"]["endCursor"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, before);
}

async fn images_on_posts_are_the_authors_own(app: TestApp) {
    let coach = app.register("coach@example.com", "COACH").await;
    let other = app.register("other@example.com", "COACH").await;
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(upload(&app, &coach, &format!("p{i}.png"), "image/png", png()).await);
    }
    let theirs = upload(&app, &other, "them.png", "image/png", png()).await;
    let mut doc = b"%PDF-1.7\n".to_vec();
    doc.resize(100, b'%');
    let doc = upload(&app, &coach, "plan.pdf", "application/pdf", doc).await;

    for (ids, why) in [
        (json!([theirs]), "someone else's image"),
        (json!([doc]), "a PDF"),
        (json!(mine), "five images"),
        (json!(["not-an-id"]), "a malformed id"),
    ] {
        let r = app
            .gql_as(&coach.token, CREATE, json!({"b": "look", "m": ids}))
            .await;
        assert_eq!(
            (code(&r), &r["errors"][0]["extensions"]["field"]),
            ("BAD_USER_INPUT", &json!("mediaIds")),
            "{why}: {r}"
        );
    }
    assert!(
        feed_ids(&app).await.is_empty(),
        "refused posts leave nothing"
    );

    // Set on creation, in order, and made public.
    let r = app
        .gql_as(
            &coach.token,
            CREATE,
            json!({"b": "look", "m": [mine[1], mine[0]]}),
        )
        .await;
    let created = &r["data"]["createPost"];
    assert_eq!(
        created["media"],
        json!([{"id": mine[1], "visibility": "PUBLIC"}, {"id": mine[0], "visibility": "PUBLIC"}]),
        "{r}"
    );
    let p = created["id"].as_str().unwrap().to_string();
    let ids = |r: &Value| -> Vec<String> {
        r["data"]["updatePost"]["media"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };

    // Omitted keeps them, a list replaces them, [] clears them.
    let r = app
        .gql_as(&coach.token, UPDATE, json!({"id": p, "b": "new text"}))
        .await;
    assert_eq!(ids(&r), vec![mine[1].clone(), mine[0].clone()]);
    let r = app
        .gql_as(
            &coach.token,
            UPDATE,
            json!({"id": p, "m": [mine[2], mine[3], mine[4]]}),
        )
        .await;
    assert_eq!(ids(&r), mine[2..5].to_vec());
    assert_eq!(r["data"]["updatePost"]["body"], "new text");
    let r = app
        .gql_as(&coach.token, UPDATE, json!({"id": p, "m": [theirs]}))
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");

    // Deleting a file takes it off the post.
    let r = app
        .gql_as(
            &coach.token,
            "mutation($id: ID!) { deleteMedia(id: $id) }",
            json!({"id": mine[3]}),
        )
        .await;
    assert_eq!(r["data"]["deleteMedia"], mine[3].as_str(), "{r}");
    let r = app
        .gql(
            "query($id: ID!) { post(id: $id) { media { id url } } }",
            json!({"id": p}),
        )
        .await;
    let left: Vec<&str> = r["data"]["post"]["media"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec![mine[2].as_str(), mine[4].as_str()]);
    let url = r["data"]["post"]["media"][0]["url"].as_str().unwrap();
    assert_eq!(url, format!("/media/public/{}", mine[2]));

    let r = app
        .gql_as(&coach.token, UPDATE, json!({"id": p, "m": []}))
        .await;
    assert!(ids(&r).is_empty(), "{r}");

    // An admin editing the post keeps or removes its images, and adds none: neither
    // the admin's own nor the author's private ones (which would become public).
    let admin_token = admin(&app).await;
    let r = app
        .upload(&admin_token, "root.png", "image/png", png(), None)
        .await;
    let admins = r["data"]["uploadMedia"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    let r = app
        .gql_as(&admin_token, UPDATE, json!({"id": p, "m": [admins]}))
        .await;
    assert_eq!(
        (code(&r), &r["errors"][0]["extensions"]["field"]),
        ("BAD_USER_INPUT", &json!("mediaIds")),
        "the admin's image on the coach's post: {r}"
    );
    let r = app
        .gql_as(&admin_token, UPDATE, json!({"id": p, "m": [mine[4]]}))
        .await;
    assert_eq!(
        (code(&r), &r["errors"][0]["extensions"]["field"]),
        ("BAD_USER_INPUT", &json!("mediaIds")),
        "the author's image, not on the post yet: {r}"
    );
    let r = app
        .gql_as(&coach.token, UPDATE, json!({"id": p, "m": [mine[4]]}))
        .await;
    assert_eq!(ids(&r), vec![mine[4].clone()], "the author adds it: {r}");
    let r = app
        .gql_as(&admin_token, UPDATE, json!({"id": p, "m": [mine[4]]}))
        .await;
    assert_eq!(ids(&r), vec![mine[4].clone()], "the admin keeps it: {r}");
    let r = app
        .gql_as(&admin_token, UPDATE, json!({"id": p, "m": []}))
        .await;
    assert!(ids(&r).is_empty(), "the admin removes it: {r}");
}

async fn text_is_trimmed_and_bounded(app: TestApp) {
    let coach = app.register("coach@example.com", "COACH").await;
    let r = app
        .gql_as(&coach.token, CREATE, json!({"b": "  padded  "}))
        .await;
    assert_eq!(r["data"]["createPost"]["body"], "padded", "{r}");
    let p = r["data"]["createPost"]["id"].as_str().unwrap().to_string();
    for body in [
        "   ".to_string(),
        "é".repeat(5_001),
        "nul\u{0}byte".to_string(),
    ] {
        let r = app.gql_as(&coach.token, CREATE, json!({"b": body})).await;
        assert_eq!(
            (code(&r), &r["errors"][0]["extensions"]["field"]),
            ("BAD_USER_INPUT", &json!("body")),
            "{r}"
        );
        let r = app
            .gql_as(&coach.token, UPDATE, json!({"id": p, "b": body}))
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    }
    let r = app
        .gql_as(&coach.token, CREATE, json!({"b": "é".repeat(5_000)}))
        .await;
    assert!(r["data"]["createPost"]["id"].is_string(), "{r}");
    let r = app
        .gql_as(&coach.token, UPDATE, json!({"id": p, "b": null}))
        .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "a body cannot be cleared: {r}");

    for body in [
        "  ".to_string(),
        "x".repeat(2_001),
        "nul\u{0}byte".to_string(),
    ] {
        let r = app
            .gql_as(&coach.token, COMMENT, json!({"p": p, "b": body}))
            .await;
        assert_eq!(
            (code(&r), &r["errors"][0]["extensions"]["field"]),
            ("BAD_USER_INPUT", &json!("body")),
            "{r}"
        );
    }
    let r = app
        .gql_as(
            &coach.token,
            COMMENT,
            json!({"p": p, "b": format!(" {} ", "x".repeat(2_000))}),
        )
        .await;
    assert_eq!(
        r["data"]["addComment"]["body"].as_str().map(str::len),
        Some(2_000),
        "{r}"
    );
    assert_eq!(r["data"]["addComment"]["post"]["commentCount"], 1, "{r}");
    let r = app.gql(POST, json!({"id": p})).await;
    assert_eq!(
        r["data"]["post"]["body"], "padded",
        "refused updates change nothing"
    );
}

async fn deleting_a_post_takes_its_likes_and_comments(app: TestApp) {
    let coach = app.register("coach@example.com", "COACH").await;
    let fan = app.register("fan@example.com", "USER").await;
    let keep = post(&app, &coach.token, "stays").await;
    let p = post(&app, &coach.token, "goes").await;
    let c = comment(&app, &fan.token, &p, "nice").await;
    let other = comment(&app, &fan.token, &keep, "bye").await;
    let r = app
        .gql_as(
            &fan.token,
            DELETE_COMMENT,
            json!({"id": format!("urn:uuid:{other}")}),
        )
        .await;
    assert_eq!(r["data"]["deleteComment"], other.as_str(), "{r}");
    comment(&app, &fan.token, &keep, "also nice").await;
    app.gql_as(&fan.token, LIKE, json!({"p": p})).await;
    app.gql_as(&fan.token, LIKE, json!({"p": keep})).await;

    // Whatever spelling of the id was sent, the answer is the id as the API writes it,
    // the key client caches evict.
    let r = app
        .gql_as(&coach.token, DELETE, json!({"id": p.to_uppercase()}))
        .await;
    assert_eq!(r["data"]["deletePost"], p.as_str(), "{r}");
    assert_eq!(
        app.gql(POST, json!({"id": p})).await["data"]["post"],
        Value::Null
    );
    let r = app
        .gql_as(&fan.token, DELETE_COMMENT, json!({"id": c}))
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "its comments went with it: {r}");
    let r = app.gql_as(&fan.token, LIKE, json!({"p": p})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = app.gql_as(&coach.token, DELETE, json!({"id": p})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");

    // Nothing of it is left in post_db; the other post keeps its own.
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.db(jolmood::config::Database::Posts).await;
    for (table, want) in [("comments", 1), ("likes", 1), ("posts", 1)] {
        let row = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        assert_eq!(n, want, "{table}");
    }
    let r = app.gql(POST, json!({"id": keep})).await;
    assert_eq!(
        (
            &r["data"]["post"]["likeCount"],
            &r["data"]["post"]["commentCount"]
        ),
        (&json!(1), &json!(1)),
        "{r}"
    );
}

async fn suspended_authors_leave_the_feed(app: TestApp) {
    let admin = admin(&app).await;
    let coach = app.register("coach@example.com", "COACH").await;
    let other = app.register("other@example.com", "COACH").await;
    let p = post(&app, &coach.token, "soon hidden").await;
    let q = post(&app, &other.token, "stays").await;
    assert_eq!(feed_ids(&app).await, vec![q.clone(), p.clone()]);
    let early = app.register("early@example.com", "USER").await;
    let r = app.gql_as(&early.token, LIKE, json!({"p": p})).await;
    assert_eq!(r["data"]["likePost"]["likeCount"], 1, "{r}");

    let suspend =
        "mutation($u: ID!, $s: Boolean!) { suspendUser(userId: $u, suspended: $s) { id } }";
    let r = app
        .gql_as(&admin, suspend, json!({"u": coach.id, "s": true}))
        .await;
    assert!(r["data"]["suspendUser"].is_object(), "{r}");
    assert_eq!(feed_ids(&app).await, vec![q.clone()]);
    let r = app.gql(FEED_IDS, json!({})).await;
    assert_eq!(r["data"]["feed"]["totalCount"], 1, "{r}");
    assert_eq!(
        app.gql(POST, json!({"id": p})).await["data"]["post"],
        Value::Null
    );
    // Hidden posts cannot be liked or commented on meanwhile (admins excepted).
    let fan = app.register("fan@example.com", "USER").await;
    let r = app.gql_as(&fan.token, LIKE, json!({"p": p})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = app
        .gql_as(&fan.token, COMMENT, json!({"p": p, "b": "hello?"}))
        .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    // Nor unliked: a post the caller cannot read does not change.
    let r = app.gql_as(&early.token, UNLIKE, json!({"p": p})).await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = app.gql_as(&admin, LIKE, json!({"p": p})).await;
    assert_eq!(r["data"]["likePost"]["likeCount"], 2, "{r}");
    let author_posts = "query($u: ID!) { user(id: $u) { posts { totalCount nodes { id } } } }";
    let r = app.gql(author_posts, json!({"u": coach.id})).await;
    assert_eq!(r["data"]["user"]["posts"]["totalCount"], 0, "{r}");
    // Admins still see them.
    let r = app
        .gql_as(&admin, author_posts, json!({"u": coach.id}))
        .await;
    assert_eq!(
        r["data"]["user"]["posts"]["nodes"],
        json!([{"id": p}]),
        "{r}"
    );

    app.gql_as(&admin, suspend, json!({"u": coach.id, "s": false}))
        .await;
    assert_eq!(feed_ids(&app).await, vec![q, p.clone()]);
    let r = app.gql_as(&early.token, POST, json!({"id": p})).await;
    assert_eq!(r["data"]["post"]["likeCount"], 2, "{r}");
    assert_eq!(r["data"]["post"]["likedByMe"], true, "{r}");
}

async fn anonymous_readers_read(app: TestApp) {
    let coach = app.register("coach@example.com", "COACH").await;
    let fan = app.register("fan@example.com", "USER").await;
    let p = post(&app, &coach.token, "hello world").await;
    app.gql_as(&fan.token, LIKE, json!({"p": p})).await;
    comment(&app, &fan.token, &p, "hi").await;
    let r = app
        .gql(
            "{ feed { nodes { id body likeCount likedByMe commentCount author { id profile { displayName } } comments(first: 3) { nodes { body author { id } post { id likedByMe } } } } } }",
            json!({}),
        )
        .await;
    let node = &r["data"]["feed"]["nodes"][0];
    assert_eq!(node["id"], p.as_str(), "{r}");
    assert_eq!(
        (
            &node["likeCount"],
            &node["likedByMe"],
            &node["commentCount"]
        ),
        (&json!(1), &json!(false), &json!(1)),
        "{r}"
    );
    assert_eq!(node["author"]["id"], coach.id.as_str());
    assert_eq!(node["author"]["profile"]["displayName"], "Test User");
    assert_eq!(
        node["comments"]["nodes"],
        json!([{"body": "hi", "author": {"id": fan.id}, "post": {"id": p, "likedByMe": false}}])
    );
    let r = app.gql(POST, json!({"id": p})).await;
    assert_eq!(r["data"]["post"]["body"], "hello world", "{r}");
    for (q, vars) in [
        (LIKE, json!({"p": p})),
        (COMMENT, json!({"p": p, "b": "x"})),
        (DELETE, json!({"id": p})),
    ] {
        let r = app.gql(q, vars).await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "{r}");
    }
    // A new comment's post, read through the loaders, lists its comments oldest first.
    let r = app
        .gql_as(
            &fan.token,
            "mutation($p: ID!) { addComment(postId: $p, body: \"again\") { post { likedByMe commentCount comments(first: 5) { totalCount nodes { body } pageInfo { hasNextPage } } } } }",
            json!({"p": p}),
        )
        .await;
    assert_eq!(
        r["data"]["addComment"]["post"],
        json!({"likedByMe": true, "commentCount": 2, "comments": {"totalCount": 2, "nodes": [{"body": "hi"}, {"body": "again"}], "pageInfo": {"hasNextPage": false}}}),
        "{r}"
    );
    // The fan sees their own like in the comment's post too.
    let r = app
        .gql_as(
            &fan.token,
            "query($id: ID!) { post(id: $id) { likedByMe comments { nodes { post { likedByMe } } } } }",
            json!({"id": p}),
        )
        .await;
    assert_eq!(r["data"]["post"]["likedByMe"], true, "{r}");
    assert_eq!(
        r["data"]["post"]["comments"]["nodes"][0]["post"]["likedByMe"], true,
        "{r}"
    );
}

async fn statements(app: &TestApp) -> HashMap<String, u64> {
    let text = app.get_text("/metrics").await;
    text.lines()
        .filter_map(|l| l.strip_prefix("jolmood_db_statements_total{database=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(db, n)| (db.to_string(), n.trim().parse().unwrap()))
        .collect()
}

/// The query the front ends send for the feed.
const FEED: &str = "query Feed($first: Int, $after: String) {
  feed(first: $first, after: $after) {
    edges { cursor node {
      id body likeCount commentCount likedByMe createdAt
      author { id profile { displayName avatar { id url } } }
      media { id url contentType }
      comments(first: 3) { totalCount nodes { id body createdAt author { id profile { displayName avatar { url } } } } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}";

async fn a_feed_page_costs_the_same_statements_whatever_its_size(app: TestApp) {
    // Five coaches with avatars, each posting eleven times with an image; five readers
    // who like and comment.
    let mut coaches = Vec::new();
    for i in 0..5 {
        let c = app
            .register(&format!("coach{i}@example.com"), "COACH")
            .await;
        let avatar = upload(&app, &c, "me.png", "image/png", png()).await;
        let r = app
            .gql_as(
                &c.token,
                "mutation($a: ID) { updateProfile(avatarMediaId: $a) { id } }",
                json!({"a": avatar}),
            )
            .await;
        assert!(r["data"]["updateProfile"].is_object(), "{r}");
        coaches.push(c);
    }
    let mut readers = Vec::new();
    for i in 0..5 {
        readers.push(
            app.register(&format!("reader{i}@example.com"), "USER")
                .await,
        );
    }
    let mut posts = Vec::new();
    for round in 0..11 {
        let jobs = coaches.iter().map(|c| {
            let app = &app;
            async move {
                let img = upload(app, c, "p.png", "image/png", png()).await;
                let r = app
                    .gql_as(
                        &c.token,
                        CREATE,
                        json!({"b": format!("round {round}"), "m": [img]}),
                    )
                    .await;
                r["data"]["createPost"]["id"].as_str().unwrap().to_string()
            }
        });
        posts.extend(futures_util::future::join_all(jobs).await);
    }
    for (i, p) in posts.iter().enumerate() {
        let r = &readers[i % readers.len()];
        app.gql_as(&r.token, LIKE, json!({"p": p})).await;
        for (k, reader) in readers.iter().enumerate().take(i % 5) {
            comment(&app, &reader.token, p, &format!("comment {k}")).await;
        }
    }

    let viewer = &readers[0];
    // Warm the session check, so the pages measured cost only their own statements.
    app.gql_as(&viewer.token, "{ me { id } }", json!({})).await;
    let mut costs = Vec::new();
    for first in [5, 50] {
        let before = statements(&app).await;
        let r = app
            .gql_as(&viewer.token, FEED, json!({"first": first}))
            .await;
        let after = statements(&app).await;
        assert!(r.get("errors").is_none(), "{r}");
        let edges = r["data"]["feed"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), first, "{r}");
        for e in edges {
            let n = &e["node"];
            let i = posts
                .iter()
                .position(|p| n["id"] == p.as_str())
                .unwrap_or_else(|| panic!("unknown post {n}"));
            assert_eq!(
                n["likedByMe"],
                i % readers.len() == 0,
                "the viewer's own: {n}"
            );
            assert!(n["author"]["profile"]["avatar"]["url"].is_string(), "{n}");
            assert_eq!(n["media"].as_array().unwrap().len(), 1, "{n}");
            let comments = n["comments"]["nodes"].as_array().unwrap();
            assert_eq!(n["commentCount"], i % 5, "{n}");
            assert_eq!(n["comments"]["totalCount"], i % 5, "{n}");
            assert_eq!(comments.len(), (i % 5).min(3), "{n}");
            let bodies: Vec<&str> = comments
                .iter()
                .map(|c| c["body"].as_str().unwrap())
                .collect();
            let oldest: Vec<String> = (0..(i % 5).min(3))
                .map(|k| format!("comment {k}"))
                .collect();
            assert_eq!(bodies, oldest, "oldest first: {n}");
            assert!(comments
                .iter()
                .all(|c| c["author"]["profile"]["displayName"] == "Test User"));
        }
        let cost: HashMap<String, u64> = after
            .iter()
            .map(|(db, n)| (db.clone(), n - before.get(db).copied().unwrap_or(0)))
            .collect();
        costs.push(cost);
    }
    assert_eq!(
        costs[0], costs[1],
        "a page of 50 must cost what a page of 5 costs"
    );

    // A comment's post (and its first comments) come with the page.
    let nested = "query($f: Int) { feed(first: $f) { nodes { id comments(first: 3) { nodes { post { id likedByMe comments(first: 2) { nodes { body } } } } } } } }";
    let mut nested_costs = Vec::new();
    for first in [5, 50] {
        let before = statements(&app).await;
        let r = app.gql_as(&viewer.token, nested, json!({"f": first})).await;
        let after = statements(&app).await;
        assert!(r.get("errors").is_none(), "{r}");
        for n in r["data"]["feed"]["nodes"].as_array().unwrap() {
            for c in n["comments"]["nodes"].as_array().unwrap() {
                assert_eq!(c["post"]["id"], n["id"], "{r}");
                let bodies: Vec<&str> = c["post"]["comments"]["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["body"].as_str().unwrap())
                    .collect();
                assert_eq!(bodies, ["comment 0", "comment 1"][..bodies.len()], "{r}");
                assert!(!bodies.is_empty());
            }
        }
        nested_costs.push(
            after
                .iter()
                .map(|(db, n)| (db.clone(), n - before.get(db).copied().unwrap_or(0)))
                .collect::<HashMap<String, u64>>(),
        );
    }
    assert_eq!(nested_costs[0], nested_costs[1], "{nested_costs:?}");
    assert_eq!(
        nested_costs[1]["posts"], 1,
        "a comment's post comes with the page: {nested_costs:?}"
    );
    assert_eq!(
        costs[1]["posts"], 1,
        "one post_db statement: {:?}",
        costs[1]
    );
    let total: u64 = costs[1].values().sum();
    assert!(
        total <= 4,
        "{total} statements for one page: {:?}",
        costs[1]
    );
    eprintln!(
        "feed statements per page on {:?}: {:?}",
        app.backend, costs[1]
    );
}

/// The posts of every coach of a list, with their first comments and counts.
const COACHES_POSTS: &str = "query($f: Int, $pf: Int) {
  coaches(first: $f) { nodes { id
    posts(first: $pf) {
      totalCount
      nodes { id body likedByMe author { id } comments(first: 2) { totalCount nodes { body } } }
      pageInfo { hasNextPage endCursor }
    }
  } }
}";

async fn users_posts_in_a_list_cost_the_same_statements_whatever_its_size(app: TestApp) {
    // Six coaches; coach i writes i posts (the first one none), each with i % 3 comments.
    let upsert = "mutation($h: String!, $s: [String!]!) { upsertCoachProfile(headline: $h, specialtySlugs: $s) { id } }";
    let fan = app.register("fan@example.com", "USER").await;
    let mut coaches = Vec::new();
    let mut posts: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..6 {
        let c = app
            .register(&format!("coach{i}@example.com"), "COACH")
            .await;
        let r = app
            .gql_as(
                &c.token,
                upsert,
                json!({"h": format!("Coach {i}"), "s": ["yoga"]}),
            )
            .await;
        assert!(r["data"]["upsertCoachProfile"].is_object(), "{r}");
        let mut mine = Vec::new();
        for k in 0..i {
            let p = post(&app, &c.token, &format!("coach {i} post {k}")).await;
            for n in 0..(k % 3) {
                comment(&app, &fan.token, &p, &format!("comment {n}")).await;
            }
            mine.push(p);
        }
        // Newest first.
        mine.reverse();
        posts.insert(c.id.clone(), mine);
        coaches.push(c);
    }
    // The fan likes each coach's newest post.
    for mine in posts.values() {
        if let Some(p) = mine.first() {
            app.gql_as(&fan.token, LIKE, json!({"p": p})).await;
        }
    }
    app.gql_as(&fan.token, "{ me { id } }", json!({})).await;

    let mut costs = Vec::new();
    for first in [2, 6] {
        let before = statements(&app).await;
        let r = app
            .gql_as(&fan.token, COACHES_POSTS, json!({"f": first, "pf": 3}))
            .await;
        let after = statements(&app).await;
        assert!(r.get("errors").is_none(), "{r}");
        let nodes = r["data"]["coaches"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), first, "{r}");
        for n in nodes {
            let mine = &posts[n["id"].as_str().unwrap()];
            let page = &n["posts"];
            assert_eq!(page["totalCount"], mine.len(), "{n}");
            assert_eq!(page["pageInfo"]["hasNextPage"], mine.len() > 3, "{n}");
            let got: Vec<&str> = page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap())
                .collect();
            let want: Vec<&str> = mine.iter().take(3).map(String::as_str).collect();
            assert_eq!(got, want, "each coach's own newest posts: {n}");
            for (k, p) in page["nodes"].as_array().unwrap().iter().enumerate() {
                assert_eq!(p["author"]["id"], n["id"], "{p}");
                assert_eq!(p["likedByMe"], k == 0, "{p}");
                let written = p["body"]
                    .as_str()
                    .and_then(|b| b.rsplit(' ').next())
                    .and_then(|k| k.parse::<usize>().ok())
                    .unwrap();
                assert_eq!(p["comments"]["totalCount"], written % 3, "{p}");
                let bodies: Vec<&str> = p["comments"]["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["body"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    bodies,
                    ["comment 0", "comment 1"][..(written % 3).min(2)],
                    "{p}"
                );
            }
        }
        costs.push(
            after
                .iter()
                .map(|(db, n)| (db.clone(), n - before.get(db).copied().unwrap_or(0)))
                .collect::<HashMap<String, u64>>(),
        );
    }
    assert_eq!(
        costs[0], costs[1],
        "six users' posts must cost what two users' posts cost"
    );
    assert_eq!(costs[1]["posts"], 1, "one post_db statement: {costs:?}");

    // The next page of each coach continues after its cursor, still in one statement.
    let r = app
        .gql_as(&fan.token, COACHES_POSTS, json!({"f": 6, "pf": 3}))
        .await;
    let next = "query($u: ID!, $a: String) { user(id: $u) { posts(first: 3, after: $a) { totalCount nodes { id } pageInfo { hasNextPage } } } }";
    for n in r["data"]["coaches"]["nodes"].as_array().unwrap() {
        let mine = &posts[n["id"].as_str().unwrap()];
        let Some(end) = n["posts"]["pageInfo"]["endCursor"].as_str() else {
            assert!(mine.is_empty(), "{n}");
            continue;
        };
        let r = app
            .gql_as(&fan.token, next, json!({"u": n["id"], "a": end}))
            .await;
        let got: Vec<&str> = r["data"]["user"]["posts"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = mine.iter().skip(3).take(3).map(String::as_str).collect();
        assert_eq!(got, want, "{r}");
        assert_eq!(r["data"]["user"]["posts"]["totalCount"], mine.len(), "{r}");
    }
}

/// Deleting a post while others like, unlike and delete comments on it: every answer is
/// the change or `NOT_FOUND` (never a deadlock or a foreign key error), and what remains
/// of the posts that stay is counted right.
async fn deleting_a_post_races_cleanly_with_likes_and_comments(app: TestApp) {
    let coach = app.register("coach@example.com", "COACH").await;
    let mut fans = Vec::new();
    for i in 0..6 {
        fans.push(app.register(&format!("fan{i}@example.com"), "USER").await);
    }
    for round in 0..6 {
        let doomed = post(&app, &coach.token, &format!("doomed {round}")).await;
        let kept = post(&app, &coach.token, &format!("kept {round}")).await;
        let mut own = Vec::new();
        for (i, f) in fans.iter().enumerate() {
            if i % 2 == 0 {
                app.gql_as(&f.token, LIKE, json!({"p": doomed})).await;
                app.gql_as(&f.token, LIKE, json!({"p": kept})).await;
            }
            own.push((
                comment(&app, &f.token, &doomed, "bye").await,
                comment(&app, &f.token, &kept, "stay").await,
            ));
        }
        let mut jobs = Vec::new();
        for (i, f) in fans.iter().enumerate() {
            let app = &app;
            let (on_doomed, on_kept) = own[i].clone();
            let doomed = doomed.clone();
            let kept = kept.clone();
            jobs.push(async move {
                let mut answers = Vec::new();
                let toggle = if i % 2 == 0 { UNLIKE } else { LIKE };
                for (q, vars) in [
                    (toggle, json!({"p": doomed})),
                    (DELETE_COMMENT, json!({"id": on_doomed})),
                    (toggle, json!({"p": kept})),
                    (DELETE_COMMENT, json!({"id": on_kept})),
                ] {
                    answers.push(app.gql_as(&f.token, q, vars).await);
                }
                answers
            });
        }
        let delete = async {
            vec![
                app.gql_as(&coach.token, DELETE, json!({"id": doomed}))
                    .await,
            ]
        };
        let (answers, deleted) = tokio::join!(futures_util::future::join_all(jobs), delete);
        assert_eq!(
            deleted[0]["data"]["deletePost"],
            doomed.as_str(),
            "{deleted:?}"
        );
        for r in answers.iter().flatten() {
            if r.get("errors").is_some() {
                assert_eq!(code(r), "NOT_FOUND", "{r}");
            }
        }
        let r = app
            .gql_as(&fans[0].token, POST, json!({"id": doomed}))
            .await;
        assert_eq!(r["data"]["post"], Value::Null, "{r}");
        // The kept post: the even fans unliked it, the odd ones liked it, every comment
        // was deleted.
        let r = app.gql_as(&fans[0].token, POST, json!({"id": kept})).await;
        assert_eq!(r["data"]["post"]["likeCount"], fans.len() / 2, "{r}");
        assert_eq!(r["data"]["post"]["commentCount"], 0, "{r}");
        assert_eq!(r["data"]["post"]["comments"]["totalCount"], 0, "{r}");
    }
}

/// Every field a post card may show, selected the ways clients select them: fragments,
/// `__typename` everywhere, a key selected twice, both `edges` and `nodes`, variables.
/// `EXTRA` goes into the authors' selection.
const PARITY: &str =
    "query Parity($first: Int, $after: String, $c: Int, $id: ID!, $unused: String) {
  feed(first: $first, after: $after) {
    __typename totalCount
    pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
    edges { __typename cursor node { id ...Card } }
    nodes { ...Card author { id } }
  }
  post(id: $id) { ...Card }
}
fragment Card on Post {
  __typename id body likeCount commentCount likedByMe createdAt updatedAt
  author { __typename id EXTRA profile { __typename displayName bio timezone
    avatar { __typename id filename contentType size visibility url createdAt } } }
  media { __typename id filename contentType size visibility url createdAt }
  ... on Post {
    comments(first: $c) {
      __typename totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { __typename cursor node { id } }
      nodes { __typename id body createdAt author { id profile { displayName avatar { url } } } }
    }
  }
}";

/// The body of one operation's answer, as the server wrote it.
async fn gql_text(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> String {
    let mut req = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    resp.text().await.expect("body")
}

/// The root fields of [`PARITY`], each to be left out in turn.
const ROOT_FEED: &str = "  feed(first: $first, after: $after) {
    __typename totalCount
    pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
    edges { __typename cursor node { id ...Card } }
    nodes { ...Card author { id } }
  }
";
const ROOT_POST: &str = "  post(id: $id) { ...Card }\n";

async fn walks(app: &TestApp) -> (u64, u64) {
    let text = app.get_text("/metrics").await;
    let count = |outcome: &str| {
        let prefix = format!("jolmood_graphql_walks_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {outcome} walks in {text}"))
    };
    (count("walked"), count("resolved"))
}

fn without_role(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("role");
            map.values_mut().for_each(without_role);
        }
        Value::Array(items) => items.iter_mut().for_each(without_role),
        _ => {}
    }
}

/// Post pages are answered by a walk of what was preloaded (`schema::plain`), not by the
/// resolvers field by field. Selecting one field the walk leaves to the resolvers (an
/// author's `role`) sends the whole page their way: both answers must be the same.
async fn walked_pages_read_as_the_resolvers_read_them(app: TestApp) {
    let with_avatar = app.register("pictured@example.com", "COACH").await;
    let avatar = upload(&app, &with_avatar, "me.png", "image/png", png()).await;
    let r = app
        .gql_as(
            &with_avatar.token,
            "mutation($a: ID, $b: String) { updateProfile(avatarMediaId: $a, bio: $b) { id } }",
            json!({"a": avatar, "b": "Breathing, mostly."}),
        )
        .await;
    assert!(r["data"]["updateProfile"].is_object(), "{r}");
    let plain = app.register("plain@example.com", "COACH").await;
    let reader = app.register("parity-reader@example.com", "USER").await;
    let mut posts = Vec::new();
    for (i, coach) in [&with_avatar, &plain, &with_avatar].into_iter().enumerate() {
        let images = match i {
            0 => json!([
                upload(&app, coach, "a.png", "image/png", png()).await,
                upload(&app, coach, "b.png", "image/png", png()).await
            ]),
            _ => json!(null),
        };
        let r = app
            .gql_as(
                &coach.token,
                CREATE,
                json!({"b": format!("post {i}"), "m": images}),
            )
            .await;
        posts.push(r["data"]["createPost"]["id"].as_str().unwrap().to_string());
    }
    app.gql_as(&reader.token, LIKE, json!({"p": posts[0]}))
        .await;
    for k in 0..4 {
        comment(&app, &reader.token, &posts[0], &format!("comment {k}")).await;
    }
    comment(&app, &with_avatar.token, &posts[1], "from a pictured coach").await;

    for token in [Some(reader.token.as_str()), None] {
        for vars in [
            json!({"first": 2, "c": 2, "id": posts[0]}),
            json!({"first": 10, "c": 3, "id": posts[1]}),
        ] {
            let (walked, resolved) = walks(&app).await;
            let fast_text = gql_text(&app, token, &PARITY.replace("EXTRA", ""), vars.clone()).await;
            let fast: Value = serde_json::from_str(&fast_text).expect("JSON");
            assert!(fast.get("errors").is_none(), "{fast}");
            assert_eq!(
                walks(&app).await,
                (walked + 2, resolved),
                "the feed and the post were walked"
            );
            let slow_text =
                gql_text(&app, token, &PARITY.replace("EXTRA", "role"), vars.clone()).await;
            let mut slow: Value = serde_json::from_str(&slow_text).expect("JSON");
            assert!(slow.get("errors").is_none(), "{slow}");
            assert_eq!(
                walks(&app).await,
                (walked + 2, resolved + 2),
                "the feed and the post were resolved field by field"
            );
            assert_eq!(slow["data"]["post"]["author"]["role"], "COACH", "{slow}");
            without_role(&mut slow);
            assert_eq!(fast, slow, "{vars}");
            // The same text, byte for byte: keys in the same order, strings escaped and
            // dates and numbers written alike. One root field at a time: the library
            // orders the root's keys as their resolvers finish.
            for (root, its_variables) in [
                (ROOT_POST, ", $id: ID!"),
                (ROOT_FEED, "$first: Int, $after: String, "),
            ] {
                let only = PARITY.replace(root, "").replace(its_variables, "");
                let fast = gql_text(&app, token, &only.replace("EXTRA", ""), vars.clone()).await;
                let slow =
                    gql_text(&app, token, &only.replace("EXTRA", "role"), vars.clone()).await;
                assert!(!fast.contains("errors"), "{fast}");
                assert_eq!(fast, slow.replace(r#""role":"COACH","#, ""), "{vars}");
            }
        }
    }
    // Over a graphql-ws connection the walked answer is the same.
    let vars = json!({"first": 10, "c": 3, "id": posts[0]});
    let over_http = app
        .gql_as(&reader.token, &PARITY.replace("EXTRA", ""), vars.clone())
        .await;
    let mut ws = WsClient::connect(&app.ws_url, "graphql-transport-ws").await;
    ws.init(json!({"Authorization": format!("Bearer {}", reader.token)}))
        .await;
    assert_eq!(ws.message(WAIT).await["type"], "connection_ack");
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {
        "query": PARITY.replace("EXTRA", ""), "operationName": "Parity", "variables": vars,
    }}))
    .await;
    let next = ws.message(WAIT).await;
    assert_eq!(next["payload"], over_http, "{next}");
    // A response key selected twice at the top merges the two selections, walked or not.
    let twice = "query($id: ID!) { post(id: $id) { id likeCount } post(id: $id) { id body author { id } } }";
    let (walked, resolved) = walks(&app).await;
    let r = app
        .gql_as(&reader.token, twice, json!({"id": posts[0]}))
        .await;
    assert_eq!(
        walks(&app).await,
        (walked + 2, resolved),
        "both were walked"
    );
    assert_eq!(
        r,
        json!({"data": {"post": {"id": posts[0], "likeCount": 1, "body": "post 0",
            "author": {"id": with_avatar.id}}}})
    );
    // Something was compared: likes, images, an avatar, comments past the first page.
    let fast = app
        .gql_with(
            Some(&reader.token),
            &PARITY.replace("EXTRA", ""),
            json!({"first": 3, "c": 2, "id": posts[0]}),
        )
        .await;
    let first = &fast["data"]["post"];
    assert_eq!(first["likedByMe"], true, "{fast}");
    assert_eq!(first["media"].as_array().unwrap().len(), 2, "{fast}");
    assert!(
        first["author"]["profile"]["avatar"]["url"].is_string(),
        "{fast}"
    );
    assert_eq!(first["comments"]["pageInfo"]["hasNextPage"], true, "{fast}");
    assert_eq!(
        fast["data"]["feed"]["nodes"][1]["author"]["profile"]["avatar"],
        Value::Null
    );
}

/// A read that passed validation once skips it when sent again with the same variables
/// (`schema::limits::Validated`); the same document with other variables is validated
/// again, so its limits still hold, however often the first form was sent.
async fn a_read_validated_once_is_held_to_the_same_limits(app: TestApp) {
    let coach = app.register("limits-coach@example.com", "COACH").await;
    let reader = app.register("limits-reader@example.com", "USER").await;
    let id = post(&app, &coach.token, "one").await;
    comment(&app, &reader.token, &id, "first").await;
    const NESTED: &str = "query Nested($f: Int, $c: Int) {
      feed(first: $f) { nodes { id comments(first: $c) { nodes { body
        post { comments(first: $c) { nodes { id body } } } } } } }
    }";
    let small = json!({"f": 5, "c": 2});
    let large = json!({"f": 100, "c": 100});
    let mut answers = Vec::new();
    for _ in 0..3 {
        let r = app.gql_as(&reader.token, NESTED, small.clone()).await;
        assert!(r.get("errors").is_none(), "{r}");
        answers.push(r);
        let r = app.gql_as(&reader.token, NESTED, large.clone()).await;
        assert_eq!(code(&r), "GRAPHQL_VALIDATION_FAILED", "too complex: {r}");
        assert!(r.get("data").is_none(), "{r}");
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // Another document under the same name and variables is another read: validated.
    let other = "query Nested($f: Int, $c: Int) { feed(first: $f) { nodes { id nope } } }";
    let r = app.gql_as(&reader.token, other, small.clone()).await;
    assert_eq!(code(&r), "GRAPHQL_VALIDATION_FAILED", "unknown field: {r}");
    assert_eq!(
        answers[0]["data"]["feed"]["nodes"][0]["comments"]["nodes"][0]["body"],
        "first"
    );
}
