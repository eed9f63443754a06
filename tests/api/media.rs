//! Media over real HTTP on both stores (GridFS and local files): uploads as
//! apollo-upload-client sends them, type sniffing, metadata removal, the size and count
//! limits, private and public downloads with Range and ETag, avatars, deletion.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{code, eventually, process::ServerProcess, Backend, TestApp, JWT_SECRET};

on_both_backends!(
    every_accepted_type_round_trips_without_its_metadata,
    types_come_from_the_bytes_not_the_name,
    the_size_and_count_limits_hold,
    private_files_reach_their_owner_admins_and_signed_urls_only,
    ranges_and_etags_follow_http,
    avatars_are_the_callers_own_images,
    my_media_pages_newest_first_and_deletes_detach,
    forged_upload_markers_are_refused,
    one_file_cannot_be_stored_many_times,
    one_part_fills_many_variables_and_batches_carry_files,
    parts_come_in_order_and_untaken_files_vanish,
);

const MIB: usize = 1024 * 1024;

/// A JPEG as a phone writes it: EXIF with orientation and a GPS block, an XMP packet with
/// a place name, then the image data.
fn phone_jpeg() -> Vec<u8> {
    let mut tiff = b"II\x2A\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]); // Orientation 6
    tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0]); // GPS IFD
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(b"GPSLatitude 48.8566 N GPSLongitude 2.3522 E iPhone 15");
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(&tiff);
    let xmp = b"http://ns.adobe.com/xap/1.0/\0<photoshop:City>Paris</photoshop:City>".to_vec();
    let mut out = vec![0xFF, 0xD8];
    for body in [&exif, &xmp] {
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    out.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02]);
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x03, 0x00]);
    out.extend((0..4000u32).map(|i| (i % 251) as u8).filter(|b| *b != 0xFF));
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&[0, 0, 0, 0]);
    c
}

const PNG_SIG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

fn png(with_text: bool) -> Vec<u8> {
    let mut out = PNG_SIG.to_vec();
    out.extend(png_chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
    if with_text {
        out.extend(png_chunk(b"tEXt", b"Comment\0taken at 12 rue de la Paix"));
    }
    out.extend(png_chunk(b"IDAT", &[0x78, 0x9C, 1, 2, 3]));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

fn gif() -> Vec<u8> {
    let mut g = b"GIF89a\x01\0\x01\0\0\0\0".to_vec();
    g.extend_from_slice(b",\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;");
    g
}

fn pdf(len: usize) -> Vec<u8> {
    let mut p = b"%PDF-1.7\n".to_vec();
    p.resize(len, b'%');
    p
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// GETs a path with optional headers; status, headers, body.
async fn get(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = app.http.get(app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("download");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn every_accepted_type_round_trips_without_its_metadata(app: TestApp) {
    let user = app.register("media@example.com", "USER").await;
    let jpeg = phone_jpeg();
    for (name, declared, bytes, expected_type) in [
        ("IMG_0001.JPG", "image/jpeg", jpeg.clone(), "image/jpeg"),
        ("shot.png", "image/png", png(true), "image/png"),
        ("wave.gif", "image/gif", gif(), "image/gif"),
        (
            "plan.pdf",
            "application/pdf",
            pdf(70_000),
            "application/pdf",
        ),
    ] {
        let body = app
            .upload(&user.token, name, declared, bytes.clone(), None)
            .await;
        let media = &body["data"]["uploadMedia"];
        assert!(media.is_object(), "{name}: {body}");
        assert_eq!(media["contentType"], expected_type);
        assert_eq!(media["filename"], name);
        assert_eq!(media["visibility"], "PRIVATE");
        assert_eq!(media["owner"]["id"], user.id.as_str());
        let id = media["id"].as_str().unwrap();
        let auth = bearer(&user.token);
        let (status, headers, stored) =
            get(&app, &format!("/media/{id}"), &[("authorization", &auth)]).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(media["size"].as_u64(), Some(stored.len() as u64), "{name}");
        assert_eq!(headers["etag"], format!("\"{}\"", sha256(&stored)).as_str());
        assert_eq!(headers["content-type"], expected_type);
        assert_eq!(headers["content-length"], stored.len().to_string().as_str());
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["content-security-policy"], "sandbox");
        assert_eq!(headers["cache-control"], "private, no-store");
        let disposition = headers["content-disposition"].to_str().unwrap();
        if expected_type == "application/pdf" {
            assert!(disposition.starts_with("attachment;"), "{disposition}");
        } else {
            assert!(disposition.starts_with("inline;"), "{disposition}");
        }
        match expected_type {
            "image/jpeg" => {
                let text = String::from_utf8_lossy(&stored);
                assert!(
                    !text.contains("GPS") && !text.contains("iPhone"),
                    "EXIF left: {text}"
                );
                assert!(!text.contains("Paris"), "XMP left");
                assert!(
                    text.contains("Exif\0\0"),
                    "the orientation is kept in a minimal EXIF"
                );
                // The image data itself is untouched.
                let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
                assert!(stored.ends_with(&jpeg[sos..]));
                assert!(stored.len() < jpeg.len());
            }
            "image/png" => assert_eq!(stored, png(false), "text chunks removed"),
            _ => assert_eq!(stored, bytes, "{name} is stored as it came"),
        }
    }
}

async fn types_come_from_the_bytes_not_the_name(app: TestApp) {
    let user = app.register("sniff@example.com", "USER").await;
    let body = app
        .upload(
            &user.token,
            "report.pdf",
            "application/pdf",
            png(false),
            None,
        )
        .await;
    assert_eq!(
        body["data"]["uploadMedia"]["contentType"], "image/png",
        "{body}"
    );

    let mut exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF".to_vec();
    exe.resize(4096, 0);
    let before = app.dbs.media_counts().await;
    for (name, declared, bytes) in [
        ("cat.png", "image/png", exe.clone()),
        ("empty.jpg", "image/jpeg", Vec::new()),
        (
            "page.html",
            "text/html",
            b"<script>alert(1)</script>".to_vec(),
        ),
    ] {
        let body = app.upload(&user.token, name, declared, bytes, None).await;
        assert_eq!(code(&body), "UNSUPPORTED_MEDIA_TYPE", "{name}: {body}");
    }
    // A broken image of an accepted type is refused too, not stored half-cleaned.
    let mut cut = phone_jpeg();
    cut.truncate(40);
    let body = app
        .upload(&user.token, "cut.jpg", "image/jpeg", cut, None)
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        app.dbs.media_counts().await,
        before,
        "nothing refused was stored"
    );

    // Names are for display only.
    let body = app
        .upload(
            &user.token,
            "../../etc/pass\u{202e}wd.gif",
            "image/gif",
            gif(),
            None,
        )
        .await;
    assert_eq!(
        body["data"]["uploadMedia"]["filename"], "passwd.gif",
        "{body}"
    );
}

async fn the_size_and_count_limits_hold(app: TestApp) {
    let user = app.register("big@example.com", "USER").await;
    let before = app.dbs.media_counts().await;
    let body = app
        .upload(
            &user.token,
            "ten.pdf",
            "application/pdf",
            pdf(10 * MIB + 1),
            None,
        )
        .await;
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE", "{body}");
    assert_eq!(app.dbs.media_counts().await, before, "nothing stored");
    let body = app
        .upload(
            &user.token,
            "ten.pdf",
            "application/pdf",
            pdf(10 * MIB),
            None,
        )
        .await;
    assert_eq!(
        body["data"]["uploadMedia"]["size"],
        10 * MIB,
        "exactly 10 MiB is fine: {body}"
    );
    // Far over the limit: refused by the parser, still as a GraphQL error body.
    let body = app
        .upload(
            &user.token,
            "huge.pdf",
            "application/pdf",
            pdf(11 * MIB + 10),
            None,
        )
        .await;
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE", "{body}");

    // Two large files in one request fit: the limits are per file and per count.
    let before_pair = app.dbs.media_counts().await;
    let operations = json!([
        {"query": crate::helpers::UPLOAD, "variables": {"file": null}},
        {"query": crate::helpers::UPLOAD, "variables": {"file": null}},
    ]);
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text(
            "map",
            r#"{"0":["0.variables.file"],"1":["1.variables.file"]}"#,
        )
        .part(
            "0",
            reqwest::multipart::Part::bytes(pdf(7 * MIB)).file_name("a.pdf"),
        )
        .part(
            "1",
            reqwest::multipart::Part::bytes(pdf(7 * MIB)).file_name("b.pdf"),
        );
    let resp = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&user.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    for i in 0..2 {
        assert_eq!(body[i]["data"]["uploadMedia"]["size"], 7 * MIB, "{body}");
    }
    assert_eq!(app.dbs.media_counts().await.0, before_pair.0 + 2);

    // Six files in one request (a batch of uploads).
    let mut operations = Vec::new();
    let mut map = serde_json::Map::new();
    let mut form = reqwest::multipart::Form::new();
    for i in 0..6 {
        operations.push(json!({"query": crate::helpers::UPLOAD, "variables": {"file": null}}));
        map.insert(i.to_string(), json!([format!("{i}.variables.file")]));
    }
    form = form
        .text("operations", Value::Array(operations).to_string())
        .text("map", Value::Object(map).to_string());
    for i in 0..6 {
        form = form.part(
            i.to_string(),
            reqwest::multipart::Part::bytes(gif()).file_name(format!("{i}.gif")),
        );
    }
    let counts = app.dbs.media_counts().await;
    let resp = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&user.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        app.dbs.media_counts().await,
        counts,
        "nothing of the six stored"
    );

    // The CSRF rule: a form post without Authorization or a preflight header.
    let form = reqwest::multipart::Form::new()
        .text(
            "operations",
            json!({"query": crate::helpers::UPLOAD, "variables": {"file": null}}).to_string(),
        )
        .text("map", r#"{"0":["variables.file"]}"#)
        .part(
            "0",
            reqwest::multipart::Part::bytes(gif()).file_name("x.gif"),
        );
    let resp = app
        .http
        .post(app.url("/graphql"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// Signs `/media/{id}` as the server does, for a chosen expiry.
fn signed_path(id: &str, exp: i64) -> String {
    let key = Sha256::new()
        .chain_update(b"jolmood media url signing\0")
        .chain_update(JWT_SECRET.as_bytes())
        .finalize();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}|{exp}").as_bytes());
    format!(
        "/media/{id}?exp={exp}&sig={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

async fn private_files_reach_their_owner_admins_and_signed_urls_only(app: TestApp) {
    let Some(app) = TestApp::spawn_with(app.backend, |c| {
        c.admin_email = Some("admin@example.com".into());
        c.admin_password = Some("admin password 1".into());
    })
    .await
    else {
        return;
    };
    let owner = app.register("owner@example.com", "USER").await;
    let other = app.register("other@example.com", "USER").await;
    let admin = app.login("admin@example.com", "admin password 1").await;
    let admin = admin["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let body = app
        .upload(&owner.token, "private.gif", "image/gif", gif(), None)
        .await;
    let id = body["data"]["uploadMedia"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = body["data"]["uploadMedia"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.starts_with(&format!("/media/{id}?exp=")), "{url}");

    let private = format!("/media/{id}");
    for (who, token, expected) in [
        ("owner", Some(owner.token.as_str()), StatusCode::OK),
        ("admin", Some(admin.as_str()), StatusCode::OK),
        (
            "another user",
            Some(other.token.as_str()),
            StatusCode::NOT_FOUND,
        ),
        ("a forged token", Some("forged"), StatusCode::NOT_FOUND),
        ("nobody", None, StatusCode::NOT_FOUND),
    ] {
        let auth = token.map(bearer);
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let (status, _, body) = get(&app, &private, &headers).await;
        assert_eq!(status, expected, "{who}");
        if expected == StatusCode::OK {
            assert_eq!(body, gif(), "{who}");
        }
    }
    // A file that does not exist answers the same as one the caller may not see.
    let (status, _, _) = get(&app, &format!("/media/{}", uuid::Uuid::now_v7()), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&app, "/media/not-an-id", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The signed URL works with no header, until it expires; a changed one never does.
    let (status, _, body) = get(&app, &url, &[]).await;
    assert_eq!((status, body), (StatusCode::OK, gif()));
    let now = chrono::Utc::now().timestamp();
    let (status, _, _) = get(&app, &signed_path(&id, now + 60), &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a fresh signature of the server's key"
    );
    let (status, _, _) = get(&app, &signed_path(&id, now - 1), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an expired signature");
    let tampered = url.replace("exp=", "exp=9");
    let (status, _, _) = get(&app, &tampered, &[]).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a signature for another expiry"
    );

    // The public route never serves a private file; `media` answers null to others.
    let (status, _, _) = get(&app, &format!("/media/public/{id}"), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let q = "query M($id: ID!) { media(id: $id) { id filename } }";
    assert_eq!(
        app.gql_as(&other.token, q, json!({"id": id})).await["data"]["media"],
        Value::Null
    );
    assert_eq!(
        app.gql(q, json!({"id": id})).await["data"]["media"],
        Value::Null
    );
    assert_eq!(
        app.gql_as(&owner.token, q, json!({"id": id})).await["data"]["media"]["id"],
        id.as_str()
    );
    assert_eq!(
        app.gql_as(&admin, q, json!({"id": id})).await["data"]["media"]["id"],
        id.as_str()
    );

    // A public upload is anyone's to read, cacheable.
    let body = app
        .upload(&owner.token, "open.gif", "image/gif", gif(), Some("PUBLIC"))
        .await;
    let public = &body["data"]["uploadMedia"];
    let pid = public["id"].as_str().unwrap();
    assert_eq!(public["url"], format!("/media/public/{pid}").as_str());
    let (status, headers, body) = get(&app, &format!("/media/public/{pid}"), &[]).await;
    assert_eq!((status, body), (StatusCode::OK, gif()));
    assert_eq!(headers["cache-control"], "public, max-age=86400");
    assert_eq!(
        app.gql(q, json!({"id": pid})).await["data"]["media"]["id"],
        pid
    );

    // Others may not delete it; its owner may.
    let del = "mutation D($id: ID!) { deleteMedia(id: $id) }";
    assert_eq!(
        code(&app.gql_as(&other.token, del, json!({"id": pid})).await),
        "FORBIDDEN"
    );
    assert_eq!(
        code(&app.gql_as(&other.token, del, json!({"id": id})).await),
        "NOT_FOUND"
    );
    assert_eq!(
        app.gql_as(&admin, del, json!({"id": id})).await["data"]["deleteMedia"],
        id.as_str()
    );
    let (status, _, _) = get(&app, &url, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "gone");
}

async fn ranges_and_etags_follow_http(app: TestApp) {
    let user = app.register("range@example.com", "USER").await;
    // Over one GridFS chunk (255 KiB), so a middle range crosses a chunk boundary.
    let bytes: Vec<u8> = {
        let mut p = pdf(9);
        p.extend((0..600_000u32).map(|i| (i % 253) as u8));
        p
    };
    let body = app
        .upload(
            &user.token,
            "long.pdf",
            "application/pdf",
            bytes.clone(),
            Some("PUBLIC"),
        )
        .await;
    let id = body["data"]["uploadMedia"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/media/public/{id}");
    let size = bytes.len();
    let boundary = 255 * 1024;
    for (range, start, end) in [
        ("bytes=0-9".to_string(), 0, 10),
        (
            format!("bytes={}-{}", boundary - 100, boundary + 99),
            boundary - 100,
            boundary + 100,
        ),
        ("bytes=-10".to_string(), size - 10, size),
        (format!("bytes={}-", size - 3), size - 3, size),
    ] {
        let (status, headers, body) = get(&app, &path, &[("range", &range)]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(body, &bytes[start..end], "{range}");
        assert_eq!(
            headers["content-range"],
            format!("bytes {start}-{}/{size}", end - 1).as_str(),
            "{range}"
        );
        assert_eq!(
            headers["content-length"],
            (end - start).to_string().as_str()
        );
    }
    let (status, headers, body) = get(&app, &path, &[("range", &format!("bytes={size}-"))]).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers["content-range"], format!("bytes */{size}").as_str());
    assert!(body.is_empty());

    let (status, headers, body) = get(&app, &path, &[]).await;
    assert_eq!((status, body.len()), (StatusCode::OK, size));
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", sha256(&bytes)));
    let (status, _, body) = get(&app, &path, &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    let (status, _, _) = get(&app, &path, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, StatusCode::OK);
}

const PROFILE: &str = "mutation P($avatarMediaId: ID, $bio: String) {
  updateProfile(avatarMediaId: $avatarMediaId, bio: $bio) { profile { bio avatar { id url visibility contentType } } }
}";

async fn avatars_are_the_callers_own_images(app: TestApp) {
    let user = app.register("face@example.com", "USER").await;
    let other = app.register("stranger@example.com", "USER").await;
    let mine = app
        .upload(&user.token, "me.png", "image/png", png(false), None)
        .await;
    let mine = mine["data"]["uploadMedia"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = app
        .upload(&other.token, "them.png", "image/png", png(false), None)
        .await;
    let theirs = theirs["data"]["uploadMedia"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = app
        .upload(&user.token, "cv.pdf", "application/pdf", pdf(100), None)
        .await;
    let doc = doc["data"]["uploadMedia"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    for (id, why) in [
        (theirs.clone(), "someone else's"),
        (doc.clone(), "not an image"),
        (uuid::Uuid::now_v7().to_string(), "none at all"),
        ("nope".to_string(), "not an id"),
    ] {
        let body = app
            .gql_as(
                &user.token,
                PROFILE,
                json!({"avatarMediaId": id, "bio": "kept?"}),
            )
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{why}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], "avatarMediaId",
            "{why}"
        );
    }
    let body = app
        .gql_as(
            &user.token,
            PROFILE,
            json!({"avatarMediaId": mine, "bio": "Runner"}),
        )
        .await;
    let avatar = &body["data"]["updateProfile"]["profile"]["avatar"];
    assert_eq!(avatar["id"], mine.as_str(), "{body}");
    assert_eq!(avatar["visibility"], "PUBLIC", "an avatar becomes public");
    assert_eq!(avatar["url"], format!("/media/public/{mine}").as_str());
    let (status, _, _) = get(&app, &format!("/media/public/{mine}"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    // Anyone reading the user sees it; leaving the variable out keeps it.
    let q = "query U($id: ID!) { user(id: $id) { profile { avatar { id } } } }";
    let seen = app.gql_as(&other.token, q, json!({"id": user.id})).await;
    assert_eq!(
        seen["data"]["user"]["profile"]["avatar"]["id"],
        mine.as_str()
    );
    let body = app
        .gql_as(&user.token, PROFILE, json!({"bio": "Still"}))
        .await;
    assert_eq!(
        body["data"]["updateProfile"]["profile"]["avatar"]["id"],
        mine.as_str()
    );
    let body = app
        .gql_as(&user.token, PROFILE, json!({"avatarMediaId": null}))
        .await;
    assert_eq!(
        body["data"]["updateProfile"]["profile"]["avatar"],
        Value::Null,
        "cleared"
    );
}

async fn my_media_pages_newest_first_and_deletes_detach(app: TestApp) {
    let user = app.register("many@example.com", "USER").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = app
            .upload(&user.token, &format!("{i}.gif"), "image/gif", gif(), None)
            .await;
        ids.push(
            body["data"]["uploadMedia"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    ids.reverse();
    let q = "query Mine($first: Int, $after: String) { myMedia(first: $first, after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let body = app
            .gql_as(&user.token, q, json!({"first": 2, "after": after}))
            .await;
        let page = &body["data"]["myMedia"];
        assert_eq!(page["totalCount"], 5, "{body}");
        seen.extend(
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ids, "newest first, each once");
    assert_eq!(code(&app.gql(q, json!({})).await), "UNAUTHENTICATED");

    // Deleting the avatar's file takes it off the profile.
    app.gql_as(&user.token, PROFILE, json!({"avatarMediaId": ids[0]}))
        .await;
    let del = "mutation D($id: ID!) { deleteMedia(id: $id) }";
    let body = app.gql_as(&user.token, del, json!({"id": ids[0]})).await;
    assert_eq!(body["data"]["deleteMedia"], ids[0].as_str(), "{body}");
    let me = app
        .gql_as(
            &user.token,
            "{ me { profile { avatar { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["profile"]["avatar"], Value::Null);
    let body = app.gql_as(&user.token, q, json!({})).await;
    assert_eq!(body["data"]["myMedia"]["totalCount"], 4);
    assert_eq!(
        code(&app.gql_as(&user.token, del, json!({"id": ids[0]})).await),
        "NOT_FOUND"
    );
}

/// The anonymous temp files (`O_TMPFILE`, shown as "(deleted)") a process holds open.
fn open_temp_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|t| t.to_string_lossy().contains("(deleted)"))
                .count()
        })
        .unwrap_or(0)
}

mod cut_uploads {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded() {
        refused_and_cut_uploads_leave_nothing(Backend::Embedded).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        refused_and_cut_uploads_leave_nothing(Backend::Postgres).await
    }
}

/// Refused and interrupted uploads leave no file, no chunk and no temp file, in a server
/// of its own (so its open files are its uploads' alone).
async fn refused_and_cut_uploads_leave_nothing(backend: Backend) {
    let Some((server, app)) = ServerProcess::start(backend, &[]).await else {
        return;
    };
    let pid = server.pid();
    let user = app.register("cut@example.com", "USER").await;
    let baseline = open_temp_files(pid);
    let before = app.dbs.media_counts().await;

    let body = app
        .upload(
            &user.token,
            "big.pdf",
            "application/pdf",
            pdf(10 * MIB + 1),
            None,
        )
        .await;
    assert_eq!(code(&body), "PAYLOAD_TOO_LARGE");
    let body = app
        .upload(
            &user.token,
            "x.png",
            "image/png",
            b"MZ not an image".to_vec(),
            None,
        )
        .await;
    assert_eq!(code(&body), "UNSUPPORTED_MEDIA_TYPE");

    // A client that goes away in the middle of its upload.
    use tokio::io::AsyncWriteExt;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let boundary = "cutcutcut";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\":[\"variables.file\"]}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n",
        json!({"query": crate::helpers::UPLOAD, "variables": {"file": null}})
    );
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        user.token,
        head.len() + 5 * MIB
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&vec![b'%'; 2 * MIB]).await.unwrap();
    drop(socket);

    let clean = eventually(Duration::from_secs(20), || async {
        open_temp_files(pid) <= baseline && app.dbs.media_counts().await == before
    })
    .await;
    assert!(
        clean,
        "left behind: {} temp files (baseline {baseline}), store {:?} (was {before:?})",
        open_temp_files(pid),
        app.dbs.media_counts().await
    );
    // And the server is fine.
    let body = app
        .upload(&user.token, "ok.gif", "image/gif", gif(), None)
        .await;
    assert!(body["data"]["uploadMedia"].is_object(), "{body}");
    assert!(server.stop().errors().is_empty(), "no ERROR logged");
}

/// The library marks multipart files with `#__graphql_file__:<n>` strings; a client that
/// writes one itself gets a coded error (the library would panic on it).
async fn forged_upload_markers_are_refused(app: TestApp) {
    let user = app.register("forger@example.com", "USER").await;
    for (query, variables) in [
        (
            crate::helpers::UPLOAD,
            json!({"file": "#__graphql_file__:0"}),
        ),
        (
            crate::helpers::UPLOAD,
            json!({"file": "#__graphql_file__:x"}),
        ),
        (
            "mutation { uploadMedia(file: \"#__graphql_file__:9\") { id } }",
            json!({}),
        ),
        (
            "mutation M($f: Upload = \"#__graphql_file__:x\") { uploadMedia(file: $f) { id } }",
            json!({}),
        ),
    ] {
        let body = app.gql_as(&user.token, query, variables.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{variables}: {body}");
    }
    // A genuine upload in the same request shape still works.
    let body = app
        .upload(&user.token, "ok.gif", "image/gif", gif(), None)
        .await;
    assert!(body["data"]["uploadMedia"].is_object(), "{body}");
}

/// One file part may fill many variables and fields, and each `uploadMedia` stores it: an
/// operation calls it at most five times. A boundary parameter in capitals does not get
/// past the file count either.
async fn one_file_cannot_be_stored_many_times(app: TestApp) {
    let user = app.register("many-copies@example.com", "USER").await;
    let before = app.dbs.media_counts().await;
    let fields = (0..6)
        .map(|_| "uploadMedia(file: $file) { id }")
        .collect::<Vec<_>>()
        .join(" ");
    let doc = format!("mutation Copies($file: Upload!) {{ {fields} }}");
    let form = reqwest::multipart::Form::new()
        .text(
            "operations",
            json!({"query": doc, "variables": {"file": null}}).to_string(),
        )
        .text("map", r#"{"0":["variables.file"]}"#)
        .part(
            "0",
            reqwest::multipart::Part::bytes(gif()).file_name("a.gif"),
        );
    let resp = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&user.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_eq!(app.dbs.media_counts().await, before);

    let boundary = "CapitalBoundary";
    let mut raw = String::new();
    let ops: Vec<Value> = (0..6)
        .map(|_| json!({"query": crate::helpers::UPLOAD, "variables": {"file": null}}))
        .collect();
    let map: serde_json::Map<String, Value> = (0..6)
        .map(|i| (i.to_string(), json!([format!("{i}.variables.file")])))
        .collect();
    raw.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{}\r\n",
        Value::Array(ops)
    ));
    raw.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{}\r\n",
        Value::Object(map)
    ));
    for i in 0..6 {
        raw.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{i}\"; filename=\"{i}.gif\"\r\nContent-Type: image/gif\r\n\r\nGIF89a\r\n"));
    }
    raw.push_str(&format!("--{boundary}--\r\n"));
    let resp = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&user.token)
        .header(
            "content-type",
            format!("multipart/form-data; BOUNDARY={boundary}"),
        )
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(app.dbs.media_counts().await, before);
}

/// POSTs a multipart form to /graphql (with the token when given, else the preflight
/// header a browser client sends); the status and the JSON body.
async fn post_form(
    app: &TestApp,
    token: Option<&str>,
    form: reqwest::multipart::Form,
) -> (StatusCode, Value) {
    let mut req = app.http.post(app.url("/graphql")).multipart(form);
    req = match token {
        Some(t) => req.bearer_auth(t),
        None => req.header("apollo-require-preflight", "true"),
    };
    let resp = req.send().await.expect("upload request");
    let status = resp.status();
    (status, resp.json().await.expect("json body"))
}

fn file_part(name: &str, bytes: Vec<u8>) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes).file_name(name.to_string())
}

/// One file part mapped to two variables of one document (as apollo-upload-client
/// deduplicates a file used twice) stores two files with the same bytes; a batch of two
/// uploads stores one file each.
async fn one_part_fills_many_variables_and_batches_carry_files(app: TestApp) {
    let user = app.register("twice@example.com", "USER").await;
    // Three GridFS chunks, so the second file is a copy across chunk boundaries.
    let doc = pdf(700_000);
    let query = "mutation Twice($a: Upload!, $b: Upload!, $visibility: MediaVisibility) {
      first: uploadMedia(file: $a) { id size visibility }
      second: uploadMedia(file: $b, visibility: $visibility) { id size visibility }
    }";
    let form = reqwest::multipart::Form::new()
        .text(
            "operations",
            json!({"query": query, "operationName": "Twice", "variables": {"a": null, "b": null}})
                .to_string(),
        )
        .text("map", r#"{"0":["variables.a","variables.b"]}"#)
        .part("0", file_part("plan.pdf", doc.clone()));
    let (status, body) = post_form(&app, Some(&user.token), form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = &body["data"]["first"];
    let second = &body["data"]["second"];
    assert_ne!(first["id"], second["id"], "{body}");
    for media in [first, second] {
        assert_eq!(media["size"].as_u64(), Some(doc.len() as u64), "{body}");
        assert_eq!(
            media["visibility"], "PRIVATE",
            "the omitted variable keeps the default"
        );
        let id = media["id"].as_str().unwrap();
        let auth = bearer(&user.token);
        let (status, headers, stored) =
            get(&app, &format!("/media/{id}"), &[("authorization", &auth)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(stored, doc, "{id} holds the bytes sent");
        assert_eq!(headers["etag"], format!("\"{}\"", sha256(&doc)).as_str());
    }

    let before = app.dbs.media_counts().await;
    let operations = json!([
        {"query": crate::helpers::UPLOAD, "operationName": "Upload", "variables": {"file": null}},
        {"query": crate::helpers::UPLOAD, "operationName": "Upload", "variables": {"file": null, "visibility": "PUBLIC"}},
    ]);
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text(
            "map",
            r#"{"a":["0.variables.file"],"b":["1.variables.file"]}"#,
        )
        .part("a", file_part("one.gif", gif()))
        .part("b", file_part("two.png", png(false)));
    let (status, body) = post_form(&app, Some(&user.token), form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body[0]["data"]["uploadMedia"]["contentType"], "image/gif",
        "{body}"
    );
    assert_eq!(
        body[0]["data"]["uploadMedia"]["visibility"], "PRIVATE",
        "{body}"
    );
    assert_eq!(
        body[1]["data"]["uploadMedia"]["contentType"], "image/png",
        "{body}"
    );
    assert_eq!(
        body[1]["data"]["uploadMedia"]["visibility"], "PUBLIC",
        "{body}"
    );
    let after = app.dbs.media_counts().await;
    assert_eq!(after.0, before.0 + 2, "two files stored");
}

/// The spec's order (operations, map, files) is required, since a file cannot be checked
/// before its map; a file that no operation takes (here: a caller without a token) is
/// gone by the time the answer arrives.
async fn parts_come_in_order_and_untaken_files_vanish(app: TestApp) {
    let user = app.register("order@example.com", "USER").await;
    let before = app.dbs.media_counts().await;
    let operations =
        json!({"query": crate::helpers::UPLOAD, "variables": {"file": null}}).to_string();

    let form = reqwest::multipart::Form::new()
        .part("0", file_part("early.gif", gif()))
        .text("operations", operations.clone())
        .text("map", r#"{"0":["variables.file"]}"#);
    let (status, body) = post_form(&app, Some(&user.token), form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");
    assert!(
        body.get("data").is_none(),
        "a request error has no data: {body}"
    );

    let form = reqwest::multipart::Form::new()
        .text("operations", operations.clone())
        .text("map", r#"{"0":["variables.file"],"1":["variables.file"]}"#)
        .part("0", file_part("only.gif", gif()));
    let (status, body) = post_form(&app, Some(&user.token), form).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a mapped part is missing: {body}"
    );
    assert_eq!(
        app.dbs.media_counts().await,
        before,
        "nothing kept of the part that came"
    );

    let form = reqwest::multipart::Form::new()
        .text("operations", operations)
        .text("map", r#"{"0":["variables.file"]}"#)
        .part("0", file_part("big.pdf", pdf(600_000)));
    let (status, body) = post_form(&app, None, form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(
        app.dbs.media_counts().await,
        before,
        "the file nobody took is gone when the answer arrives"
    );
}
