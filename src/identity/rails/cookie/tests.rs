//! Cookies written by Rails 6.1.7.10 (Debian 12's ruby-rails, Ruby 3.1.2) through
//! `ActionDispatch::Cookies` and `Session::CookieStore` (or `cookie_jar.encrypted[]=` for a
//! chosen expiry), with the env keys railties' `Application#env_config` sets and a
//! `KeyGenerator.new(secret_key_base, iterations: 1000)`. SHA256 keys come from a
//! KeyGenerator whose `generate_key` is 7.0's (`PKCS5.pbkdf2_hmac(..., SHA256)`). Each was
//! read back by Rails before being pasted; the session ids are those Rails generated.

use aws_lc_rs::aead::{Aad, Nonce};
use serde_json::json;

use super::*;

const SECRET: &[u8] = b"8a909d56909bae493e78dd5d58c4186bf4281d149365c1aa2c08806c5bafc87647cb42b1f173e81686dd4b551227cb51e3ae40fb28b1e7c824d5aa63308731f2";
const NAME: &str = "_app_session";
/// Any instant before the vectors' far expiries (2100) and after the expired one (2023).
const NOW: u64 = 1_750_000_000;

// session_id 54670c0f51bfa4238205c33c0c32aad8
const GCM_SHA1_JSON: &str = "QeepDOWid5%2F6FtvU4hvzQsXKwSqZ8yZoRXfvBTBtb1kwO4FGs9wJOEj%2BL2y1XtNpdDzdAcPmcPT1O8Fie253mA3L%2BVSzlU4AZzg9KAufP9NlR6YAxGp3m3h4w70XDS2y7av4kHEeXLcYI%2FvOsSXDmeTEEMkdf7GtaaYQNsYXMzMoL8gYhtwjYeBc7UR147ki8%2BlBNJbv9XS1zJJwXGW2ogbHbYAe70xr4aIf8EZir1GWZZWF%2FPuRyukTxR9NUZS%2B5AgunIZPrlOiqzlMmr83T%2Fj2%2FcKhFVCK1YgfAMqc68xVmUuBtHRZqkJ8GPJtV8OjQhBffsDewWs%2FvmDGQvbj7d28X11LYjzOpSl%2Bj8jMjncLn8EcovgSWcR3ZFwze8sG7F5ESpN94giSoMDbaBSnSToEpS1vpDLhebe8hUROt6%2FimAZylhUB7BxpAgr1MAulz425HE4EG3dHr1yohM6KWn%2FR%2FI3m6YGbyfnWoAn7H14ZJRF8JTHZ6Q%3D%3D--JOouHwU02UoXfuj9--Mc%2Fw67gXCrGfiyO3au9yLA%3D%3D";
// session_id 48ac9f914b5a4d1f2385d84da4246af1
const GCM_SHA256_JSON: &str = "tWXRBTZoZuap4d0oWrzNXi2%2BuR%2Bt1N2R%2FkzY69vRLQSqs4ph7KnBDqFhrYyhDQbvYrnk7QUkosfchJdnsQMvdFfO6fh2CGIEW1dGzpypKEkAT6oawM%2BMN81Wm2S1zAlGqc8GoaoBS6m2zotNcWTjPJPJzQBn0nTwjOnnQ7b2%2BYoHfEdkwCbBQvRxnt3aGLi%2Br%2FnAtbOSLRXfVIxVSDB2yPTiOBsRkerwArY4vk2FhSMxslj0DsDhBxOZA8X0SMmXOKKRgpvqWmCItXczGpiw3bwky8nDPE2gk8ue3Wf460p7iXaNoYn48uA7IwMGmXJj7%2ByJPcnm5%2BFTtX3OFE1JtVdLLPsyfVfCCcxXd9iyCFp3YR6PConDyG8pMrBSLKzWQiS5yoLu%2B2tufDpNZnhDgA%2BWWTNdKB%2F7sKCrWEua4emSMvk%2BanBdBkyCjYnhTkKVRiZ1YdZoBzg%2B7uybC%2FymjYSwzmMk2okXz%2BOHceDpZXZZu8frjTQRmg%3D%3D--Rvm%2FNOYptXDGPTEN--6HfOjDNqyV8h6saOtncHnA%3D%3D";
// session_id c87449a20a9dbb507fd930341f13614a
const GCM_SHA1_MARSHAL: &str = "krdxe%2BcRDGZQOiKlZg7H5ykb4Zj59F00ZmCIF29%2FnFXOZQ6yqWMmyLN1V82eVPN5ldSqst3AsahejA1eoq%2Bky8HVKlkhR5q6PG3shMQCP%2B7Wyowzu1i%2BXpTLszyTdwsw8CLHHCye0X1awhl3w0jG28TSUqG85j5lxBR7C4%2FJnZDRl2PMG8qI%2B3P5vcbzKFlf1bBInpFhzvSF8%2BE2gnJTZcq5cZlSLlH1W%2BrzXV1pz6E858m4tTBHWwrRiZsov5I14HVe1vkLC56Q0WZG%2BkSy6SJn4oaCAXCkXj%2F6hWfY2o1nBlAqoFHBqQMsdf5aNDQ8Zo7ZCNrZR%2FwNWCvlk%2FS8Ng%2Bxe%2B%2FEXkXxkqGSUo%2BDX7NynFOM1LJUrqEbPeVISo9D2b%2FFQB3wrGTOHmr%2F5nPpkbWQ865JRLXWhY%2BbUciati%2BDTos0CqP%2B8PtwlbFbrzUC%2BAvDzUj8U0E3bxSret1dHsNd%2FRwtsGowSeo2j%2FXm2pTpTq0GppzOT6Iz%2BtZkYvNVC5Bb5%2FHxc4qY%2B8nrllhxhweaBrTSW8LID9hsP7ZD9Vnxjch5AvOCES5R1OHh5r%2FJst%2FaPztXOcI%3D--4nX%2BZZqoqb4bi1dC--Ajz7RKqHS6yAjJxcJVriVQ%3D%3D";
// session_id 01a8d9d175f4dcb677f8d75d7d77bb96
const CBC_SHA1_JSON_NO_METADATA: &str = "YTQyNWwvalBGYmdtVFVUMjUwWk1pbEtjZERpRWl5YmhlMmcwNjlGbjlwQzZ6dnYzcExybU9KTkRLc28xUHFCaWE4Skh2NEF4anZTWDlnbFRMUUQvU05NTkZScXlPVVFjNUYxN3U1ZFJGUXhpOFNPbWZtOUN1VERUcjcwRXY0ZW54anZEZDE0ZC92OXVkL3lNZXRuNjQyWDR4MVhjMHRyWVZ1VFZQam1PV3FMLzhrYnA2SGVqSmUvQS8vd0pDaFhtVWd3R2pqaWpMNlJWek9RUjBMemFwNzNycTI3MXBJZE9uZE5tRlRrZGMzdVFuTklMMHdtclU5S2FGaXBaWU5iSVNRNW1ZZVN1aWQrazZacjBaOERuVCt1MVVuY2x0YlRGU3ozZnQ0WUQ4ZmVDNWVBNnZrMitCMTBERDZ2QzBPdWktLVUyTnAvTXBmVkRVRWo0anFsSGxvVHc9PQ%3D%3D--42488ef37b419d422d1ff41d53cd05990eeea577";
// session_id 514b6b4ee62f2fa4f62e93c05e24ed15
const CBC_SHA1_MARSHAL: &str = "N3RlY3UrdGN5ZXh1cFhiNldGOW41S1ZZdGZYVXNQQnJZU01EU1dGbVUrcW11aGN1c0sxRkp6WWh0WXdOc21YNVB4RlIwVUZSVy9RalJSLzFBM2ppelJ0UWNvOEwyM0xMdmtoWktwS1U2VTZBbW95c2FvMmlpUnJJcjVHKy85M0dIZzZWTFhKb3NJS2NJdjEwbmpubUZxTFBYNXk0azYydDQyRU02bG9DK0JBalZuTE9RcHNwVmNhU3VxL1gzOWx4NUlMeWRQQVhLRHhhdFJGMUlaY3ZNZTNQZHMxUE9aS2NxSmExQThGN2w5QjN3VVMxenMzOWM0MGIyQVNXNE84SWpFR2lhQk1kNjE3dk1LVDVtVUpUZXFvdzBJaHFreFhZRWpzVWhmK2VYVTcyM2h5QUNCMm9yODNKTkJHY2xGRnpPTWI2VEhTc0JyMzNVMVBJQmY4bWdBUGlPNUd1clVqcEFLRHIwaFd6SWtkR0tJeUZQTk9RM3A3bExBOVQvNThYL3dCQUQ1Wmx4eWh5SmFUNXdWSnRtak80bnAwTlUrSDdZWVRBTUhkT0lBWS81OVM5SWkyYzNDcTFjVUoyU0NqanhSTytaUkhoWFA0SFZ5dkhuam9IeXgvNDlrNWhyc05oaUR0T3Zjc1d4T2I1dGpWTk5mVmdYYU0vSS9URkdweW5lbVR5disvVkEyaHFSVUtvMzlyZk54SUc2R2tmYjZEUXN1Y2wzZElZS2NkMVRGUlVxSjVvWnd0d2p1d3BESlhMTE5HUkp3a0xVSVdVaHhzb2tjMUc1dz09LS1RS0ZDeFBxNTFpWjBML0dmVnBIeGFBPT0%3D--4dacad303a775956dc494d1e6737ae56dc5aeb4f";
// (session_id: see the test)
const GCM_EXPIRES_1700000000_250: &str = "NHVPQJ%2Fvg9P9NhgaRWmhjUalHLVNFTq74iRkVoG5vwdWGGerx68bKw8E4U6OtBuFAdMOn6xmXkMB5mA1s1QXFV8i3yRpQjA6T5Y565y76oZmQ2FWaOu3lwlmW7FGlwBFxiCuM4PDyrHaDBw9M82tJwqP1l3B9smqnaiR3kuTXVQJjVWbXZNqzpiQ3PN%2BT0umbCEgNuVcn%2F42aovXnng6sWBICIg%2Bp%2FdmxbctWw3fUy5ly3rOCNDDQNw7aZjc1Ue4JpHNpjkQcqPyJGBcKDc0%2FM0qb%2FGXjqqGA9%2FBfMiPU9TuFuEUbMIDzzOe7eMp43K9VfjRQmIH%2Bgu9mvCU2vYljAf43t1pp8EdoqLogWPEGIIkclR1sIdC%2FaqDDqKgBUizAmA%2Flx1HDMpUtXFbhim%2FkraRmML5bBbfb8%2FL2InrsUdMrEl62n%2BeGZoIGQOnanrtBs4r9u3sNGQw4DJQIrIJbNcmG3Pyxw%3D%3D--%2FfOsuztZS23drfcI--xDhkrMuGdRWNujVmGuMsNQ%3D%3D";
// session_id abc
const GCM_NO_PURPOSE_OTHER_NAME: &str = "H2cI3hEmk6LMqP%2FCaAx2Y1iwxN%2FNh2sE12WjDELNqjUMDmsXZajqeY2F3KKtnwpDjCezh7rQQ92TTDf5k2mk6GE%2FYpVGfOXPmM9wuVvOB9z%2B2obyqFMiQf6dsAHtXa3C8j0Vlzhbh70tU7rJulC47S0%3D--Hq1Xys%2F5RSGoOwz%2B--RDedopnMV8%2BYaT1uR%2B3FsQ%3D%3D";
// session_id 88def87ae9848d41557ffc706b05e830
const CBC_SHA256_JSON: &str = "TEFOYVZHUHYzQ09pMVJBVzlQdHppVzFMTk5DNVozVGFBV25Qb0pDK3pSTmdUUTFUZnJQazBpUTlVWFhRZm1kOTY5QkdBUVhSUUNwclQvcURjakZMWmMwM3RSb1RTcUlKMktGaU82eTVUZTVEWGxURDVKVHZOdnlnZWZLTE9HZGFzaEZMLy9uL0ZUdGdqL0RkZU4wL2FYVTUxVnMwdGpvMWpRSG0raTF1VWxTV1pycWR5WjJNQitkcUZoa0YwN1dhd1lmcXc2MWNpMVB3clB2QlJxZ3hWQnR1MUMxNmgxV0FuTVFYSnB0Z2kzSHlLQnpISENWK2t4bGJHUEd2RDdHQ0FwNTMwMkphWEtxbENIaURmWFRHNysyMUFMb202WTR0N1YwdjFveUVUb0w0djhwYldtSncrVUNIWmtnOFhQSnVMZm5yNXIwV0hoTEtCTkVnZTNrMDFNTzV0NVdyZ3liWTdCdVVibGcwd1N5cGpmRWNzL3dlQ2czUmQwWlV1ajBldythcGVMMHdWd29Tb1l3amRqL2VWS3JrMlVGM2VGM0JvUmpDNDBjK0lJdkVEQ3UwQjhmRytVR3RlOFgxUUVIMUJIZ2hNeXJiZS9GRG1UWDBEZU1teXFHcUJETUMxRVQyRU9VS21KOGRCaTF2ZVNjTE1POVdjb2l5U1cwbXBrSUstLWdLRi9RZnB0T05hbHZyT252SlVKOWc9PQ%3D%3D--d5439a1dafb3884d44eaa63f705a82d8f7ffe659";
// session_id abc
const GCM_MARSHAL_WITH_TIME: &str = "pXjvBaPUubksg56ix%2F3rpYTsn8AQd1HKnYtI1mj5ogZMwp1nXXbfosQMmgJCDQxvNIUkPlbxn2vnG7m%2B65SY1002DZgIEpMeW41nI2XEBPZBQ%2Ftlb1Lyxdhgm7kgO89ib1D5F6DtYjiwvARlvJ1HB7ea11vJjbmIgaLfaK2zlJjAbalLqIbkaQ%2FZARreXSq5vVUofqZQQh04x9TAeLwROHm8RkA%3D--dGu2fWqRM%2FXrbaW8--1hq3irtLe9pE8J4OE%2FM14g%3D%3D";
// session_id abc
const GCM_MARSHAL_BIG_ID: &str = "Ujk%2B7kc0dpQmhZvxS9j04sGaQOMu8neepIVhsIe2IE%2FwhSVuyG3QCFU28J%2F5v3alIBAC4ZeIKAHoNAXzrKhk2iUiLnXG1p2Y2hVFBJfByk8malhMaS1vRPc0N%2F%2FyCaT2P%2FI4XvbdZqPTDUhXJoXTaH66S7KyfhNAudFepuOykkm7ensJku9LfXlwzgIT2iBkgn1mBH4rClNGoJw97SiiojE7UgoGSYMsFM92oBYRKh6a%2B8lAblAfdmmk7VpbiuzWygDUv%2FGorGjPgnb8ECauPiX3%2FwqFXr5F--cErG%2Fkr%2BwaxRqdZK--uOygg2YXyeXzMnvfc8hctA%3D%3D";
// session_id abc
const GCM_OTHER_NAME: &str = "DNSof3pLIjcIf1szn9u0mBBfdEZxaxQGrhHOnagKg90IiDsAuOwQfX21UBKnT3INjjOdnGRgjTLIvlU%2FxueYJFmx6BpVKXFxKrW8%2BiF8qsFu7TrVwkizswcm5UTwbUQcuC%2F5b%2FYwOTIm7vsgNYv0GA%2FgmZd2txteW6OgsvJLiPa2oAMF2sScHkCQHEJzWNDSo91LhQuabRWGG8HnK0psXbFBDVTtjqRwfed87lqOjdpI3bKM8E7lgasb4fBbyNXNjb0%2FYF7qe2%2F7NgLP44nbRYnLbhVX043Nz3UQ%2BW4viKKSpaNfUfgvTugXmTtwQF%2BRY6h3HZKHBmRJD0t1pJGD%2BKmexPDPV%2B1KLMszUNuomCobvac2puYy3RitIMy%2FiX0pGDT28ccO%2BZXpTGEBPNlkWJaSZydIsmpLNREtCl5KPo%2FOwFOf%2FxlRJY5YCXZC17P0Hgw%3D--6HCfw7xuBObev3Su--UbTtGq%2FlaBLShy%2F%2F6aSIWA%3D%3D";
// session_id 3c60bf98293bd83e53d0038ac11dad65
const CBC_FOR_GCM_APP: &str = "NG1jNmtCOVc5SXdoYmNHQWt2d0JjNkZGQTlMVDJKR1hRWmZyZVhVVTBDZWErbnJOOEtNVFVhazMzV3ZEbnlNanpYa0ZUSWlWRm5xSFFWd2J2emJSRkRpVmtpSGdCRmc4WTEvV2VualJhWjBIaThNSHc4dWtpekJabWVmNlZKaUNZcXhHVEQ5dlptaUZ3bUhjRFJ4OWhFcm55YWdxUmo5K2Eyb3JYaE1UUSsrQ0V3V3RoMWpGekk1dXZpM1c1aXZqU0xuenZ3eWJnaUdHUUtyOHVHdnBmalJnZS95czQ4SkF2ZGVSMm14eXluOS9yaHgvVTVRcjNIOGxqZzZ2bDRiTEtWZVVnSThVMDNLbEFUTExhUFVmRVlWVmxJRWYwUGFqdzRWQ0lyUWRTZk1TckR4cHpmS0ZHdDA2eGR0SlVibUxKMlorVElKYTBSZWI1UDRGNzB5ckw1cTFhOVVyWTJ5NU5XNjFoeFlpS2lzMVhMT09JR0FVTUtqdklla0NGYUV6dEU5K3h6cTgrY2czSDVnRHo0eTlXN0FKcHF3OFJVSTlsUU1yL0FlY2dGOXJXSjBpVEpNd3Z3VVh6Rk1YUldIaXBYQkduRmtXZGJ4WjB4dHpUMlhLQ2lFRG5YVjQyTktFOGUwZVBEWFNTR21rcjNMdjkyaHhiNmdsMEhzK2xhOWVMc3BITDFDY3pzYlpIN296YUd1UGZkbFA0K3FzUnR1cFZwMkVhVUVQQ0xZdEl5dnBQaWFkd3JRNWhVMGV4N2NHcmxmUmF3VnVEUURqNmVuS3Rldnpndz09LS1XdG1hRkRsS29Ubmh6clhLekxYQmNnPT0%3D--071e0a9a870548c998d3b98374f942429206fa93";
// session_id eae3275b472d893be7a475846b0dee55
const GCM_FOR_CBC_APP: &str = "Z%2FqFjKxK87ww0ZwQ%2B9vBlTGNxeaL3KqLDp9tqC0OGtZuNw4Xj7bQ2nDoTPVn8vHzW%2FmaqQ7nix0E4seJNUJASglLDkaPklDSqDDJFo0jr60nMypgcbhmtNJbJGvhnpLDSLylrYLICrS6UOCJtrBmxnYw2ywYND5y8szn9lU69EP31j73%2BHKt%2B8jZcxPaBSJSWfCKnA%2BCkaGAvWHQwjcfyRVGFNZX6knJglV%2B4J%2FjT47z7DJ8lYywwUeaPt6hx4RPeptWrIx584GVB57sSchWWdZeGDBq70KYUHlytwWvlsnyIk2cLaCCs5HVvEI%2BeI%2FJOteu1vBHRvaUIW6fsx3ObwIlaIvjs1CUqWgYCH3i7ITZa3oK8mtRoxFGswG1U4GHmG%2BTPCEJIgGClQ2HTHhF7pkg3dpADyS33cisvysnBAH8izPiFrFVRXLmL%2FDzwpbTRs%2BUTBE14XR5VSkKBr7dPgj4tPnQbImgTcQtfNCzqRXvn7h8YAgmpykZUo%2FClCUenlMMS%2Bytsr4mYiyzYBam0vvKjx%2B2RvYPx%2BndJ9DGWPXV3TBot2jskDSgANSKQcxj8lcpp3lIop0%3D--iksBiMObAmwqY4ia--BzNkk%2B40zf%2BscbijS1nqRQ%3D%3D";

fn cookies(cipher: RailsCipher, digest: RailsDigest) -> RailsCookies {
    RailsCookies::new(SECRET, cipher, digest)
}

fn gcm(digest: RailsDigest) -> RailsCookies {
    cookies(RailsCipher::Aes256Gcm, digest)
}

/// What the app put in the session, plus the id CookieStore added.
fn devise_session(session_id: &str) -> Value {
    json!({
        "session_id": session_id,
        "warden.user.user.key": [[1], "$2a$12$KfQZ0ZkYQj9yq3Jf3x0yJe"],
        "_csrf_token": "VGhpcyBpcyBub3QgYSByZWFsIHRva2VuLg==",
        "flash": {"discard": [], "flashes": {"notice": "Signed in successfully."}},
    })
}

#[test]
fn rails_6_1_defaults_gcm_sha1_json() {
    let session = gcm(RailsDigest::Sha1)
        .session(NAME, GCM_SHA1_JSON, NOW)
        .unwrap();
    assert_eq!(session, devise_session("54670c0f51bfa4238205c33c0c32aad8"));
    assert_eq!(
        session.pointer("/warden.user.user.key/0/0"),
        Some(&json!(1))
    );
    assert_eq!(
        gcm(RailsDigest::Auto).session(NAME, GCM_SHA1_JSON, NOW),
        Ok(session)
    );
    let sha256 = gcm(RailsDigest::Sha256).session(NAME, GCM_SHA1_JSON, NOW);
    assert_eq!(sha256, Err(BadSignature));
}

#[test]
fn rails_7_0_defaults_gcm_sha256_json() {
    let expected = devise_session("48ac9f914b5a4d1f2385d84da4246af1");
    for digest in [RailsDigest::Sha256, RailsDigest::Auto] {
        let session = gcm(digest).session(NAME, GCM_SHA256_JSON, NOW);
        assert_eq!(session, Ok(expected.clone()), "{digest:?}");
    }
    let sha1 = gcm(RailsDigest::Sha1).session(NAME, GCM_SHA256_JSON, NOW);
    assert_eq!(sha1, Err(BadSignature));
}

#[test]
fn marshal_sessions_as_hybrid_reads_them() {
    let session = gcm(RailsDigest::Sha1).session(NAME, GCM_SHA1_MARSHAL, NOW);
    assert_eq!(
        session,
        Ok(devise_session("c87449a20a9dbb507fd930341f13614a"))
    );
    // Integers past 2**30 are Marshal bignums; a symbol key and value read as strings.
    let session = gcm(RailsDigest::Sha1)
        .session(NAME, GCM_MARSHAL_BIG_ID, NOW)
        .unwrap();
    assert_eq!(
        session,
        json!({"session_id": "abc", "warden.user.user.key": [[5_000_000_000u64], "$2a$12$abc"],
               "n": 1.5, "sym": "val"})
    );
}

#[test]
fn cbc_cookies_of_older_apps() {
    let cbc = |digest| cookies(RailsCipher::Aes256Cbc, digest);
    let cases = [
        (
            CBC_SHA1_JSON_NO_METADATA,
            RailsDigest::Sha1,
            "01a8d9d175f4dcb677f8d75d7d77bb96",
        ),
        (
            CBC_SHA1_MARSHAL,
            RailsDigest::Sha1,
            "514b6b4ee62f2fa4f62e93c05e24ed15",
        ),
        (
            CBC_SHA256_JSON,
            RailsDigest::Sha256,
            "88def87ae9848d41557ffc706b05e830",
        ),
    ];
    for (value, digest, id) in cases {
        assert_eq!(
            cbc(digest).session(NAME, value, NOW),
            Ok(devise_session(id))
        );
        assert_eq!(
            cbc(RailsDigest::Auto).session(NAME, value, NOW),
            Ok(devise_session(id))
        );
    }
    let wrong = cbc(RailsDigest::Sha256).session(NAME, CBC_SHA1_MARSHAL, NOW);
    assert_eq!(wrong, Err(BadSignature));
}

#[test]
fn either_layout_is_read_whatever_the_cipher_as_rails_does() {
    let gcm_app = gcm(RailsDigest::Sha1).session(NAME, CBC_FOR_GCM_APP, NOW);
    assert_eq!(
        gcm_app,
        Ok(devise_session("3c60bf98293bd83e53d0038ac11dad65"))
    );
    let cbc_app = cookies(RailsCipher::Aes256Cbc, RailsDigest::Sha1);
    let session = cbc_app.session(NAME, GCM_FOR_CBC_APP, NOW);
    assert_eq!(
        session,
        Ok(devise_session("eae3275b472d893be7a475846b0dee55"))
    );
}

#[test]
fn the_expiry_rails_wrote_is_honoured() {
    // expires: Time.at(1_700_000_000.250); Rails reads it at .249 and not at .250.
    let reader = gcm(RailsDigest::Sha1);
    let read = |now| reader.session(NAME, GCM_EXPIRES_1700000000_250, now);
    assert_eq!(read(1_699_999_999).unwrap()["session_id"], json!("abc"));
    assert!(read(1_700_000_000).is_ok());
    assert_eq!(read(1_700_000_001), Err(Expired));
    assert_eq!(read(NOW), Err(Expired));
}

#[test]
fn the_purpose_must_name_the_cookie() {
    let reader = gcm(RailsDigest::Sha1);
    assert_eq!(reader.session(NAME, GCM_OTHER_NAME, NOW), Err(WrongPurpose));
    let other = reader
        .session("_other_session", GCM_OTHER_NAME, NOW)
        .unwrap();
    assert_eq!(other["session_id"], json!("abc"));
    // Purpose-less (use_cookies_with_metadata = false): Rails' second attempt reads it
    // under any name, and so does this.
    let expected = json!({"session_id": "abc", "user_id": 7});
    for name in [NAME, "_other_session"] {
        let session = reader.session(name, GCM_NO_PURPOSE_OTHER_NAME, NOW);
        assert_eq!(session, Ok(expected.clone()));
    }
}

#[test]
fn marshal_objects_are_refused_not_loaded() {
    // The session holds a Time, which Rails would instantiate.
    let error = gcm(RailsDigest::Sha1).session(NAME, GCM_MARSHAL_WITH_TIME, NOW);
    let Err(Data(message)) = error else {
        panic!("expected Data, got {error:?}");
    };
    assert!(message.contains("'u'"), "{message}");
    assert!(
        !message.contains("abc") && !message.contains("Time"),
        "{message}"
    );
}

#[test]
fn another_secret_is_a_bad_signature() {
    let other = RailsCookies::new(
        b"another secret_key_base",
        RailsCipher::Aes256Gcm,
        RailsDigest::Auto,
    );
    for value in all_vectors() {
        assert_eq!(other.session(NAME, value, NOW), Err(BadSignature));
    }
}

fn all_vectors() -> [&'static str; 13] {
    [
        GCM_SHA1_JSON,
        GCM_SHA256_JSON,
        GCM_SHA1_MARSHAL,
        CBC_SHA1_JSON_NO_METADATA,
        CBC_SHA1_MARSHAL,
        GCM_EXPIRES_1700000000_250,
        GCM_NO_PURPOSE_OTHER_NAME,
        CBC_SHA256_JSON,
        GCM_MARSHAL_WITH_TIME,
        GCM_MARSHAL_BIG_ID,
        GCM_OTHER_NAME,
        CBC_FOR_GCM_APP,
        GCM_FOR_CBC_APP,
    ]
}

/// `%`-encodes what Rack escapes in base64 text.
fn url_encode(text: &str) -> String {
    text.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

#[test]
fn every_flipped_bit_is_a_bad_signature() {
    let reader = gcm(RailsDigest::Auto);
    let decoded = String::from_utf8(rack_unescape(GCM_SHA1_JSON)).unwrap();
    let parts: Vec<Vec<u8>> = decoded
        .split("--")
        .map(|p| STANDARD.decode(p).unwrap())
        .collect();
    for part in 0..3 {
        for byte in 0..parts[part].len() {
            let mut forged = parts.clone();
            forged[part][byte] ^= 0x01;
            let text: Vec<String> = forged.iter().map(|p| STANDARD.encode(p)).collect();
            let value = url_encode(&text.join("--"));
            assert_eq!(
                reader.session(NAME, &value, NOW),
                Err(BadSignature),
                "{part}/{byte}"
            );
        }
    }
    // CBC: any change to the signed text or to the HMAC.
    let decoded = String::from_utf8(rack_unescape(CBC_SHA1_MARSHAL)).unwrap();
    let cbc = cookies(RailsCipher::Aes256Cbc, RailsDigest::Sha1);
    for at in 0..decoded.len() {
        let mut forged = decoded.clone().into_bytes();
        forged[at] = match forged[at] {
            b'-' => continue,
            b'0' => b'1',
            b'A' => b'B',
            _ => b'0',
        };
        let value = url_encode(std::str::from_utf8(&forged).unwrap());
        assert_eq!(cbc.session(NAME, &value, NOW), Err(BadSignature), "{at}");
    }
}

#[test]
fn every_truncation_is_refused_without_panicking() {
    let reader = gcm(RailsDigest::Auto);
    for value in all_vectors() {
        let decoded = String::from_utf8(rack_unescape(value)).unwrap();
        for text in [value, decoded.as_str()] {
            for end in (0..text.len()).filter(|&end| text.is_char_boundary(end)) {
                assert!(reader.session(NAME, &text[..end], NOW).is_err(), "{end}");
            }
        }
    }
}

#[test]
fn url_decoding_follows_rack() {
    let reader = gcm(RailsDigest::Sha1);
    // Rack turns a raw `+` into a space, which breaks the base64, as it does in Rails.
    let raw_plus = GCM_SHA1_JSON.replace("%2B", "+");
    assert_eq!(reader.session(NAME, &raw_plus, NOW), Err(Malformed));
    let lower = GCM_SHA1_JSON.replace("%2F", "%2f");
    assert!(reader.session(NAME, &lower, NOW).is_ok());
    assert_eq!(rack_unescape("a%2Bb+c"), b"a+b c");
    // A stray `%` makes decode_www_form_component raise; Rack keeps the value as is.
    assert_eq!(rack_unescape("a%2Bb%zz"), b"a%2Bb%zz");
    assert_eq!(rack_unescape("a%2"), b"a%2");
}

#[test]
fn layouts_and_sizes_that_are_not_rails_cookies() {
    let reader = gcm(RailsDigest::Sha1);
    for value in [
        "",
        "abc",
        "YQ==--YQ==--YQ==--YQ==",
        "YQ==--YQ==--YQ==",
        "YQ==--ZZ",
    ] {
        assert_eq!(reader.session(NAME, value, NOW), Err(Malformed), "{value}");
    }
    let huge = "A".repeat(MAX_VALUE_LEN + 1);
    assert_eq!(reader.session(NAME, &huge, NOW), Err(Malformed));
    // An uppercase HMAC is not what Rails compares against.
    let upper = CBC_SHA1_MARSHAL.to_uppercase();
    assert!(reader.session(NAME, &upper, NOW).is_err());
}

/// Encrypts `plain` as MessageEncryptor does for GCM, under `reader`'s first keys.
fn seal(reader: &RailsCookies, plain: &[u8]) -> String {
    let mut data = plain.to_vec();
    let nonce = Nonce::assume_unique_for_key([7; 12]);
    reader.keys[0]
        .gcm
        .seal_in_place_append_tag(nonce, Aad::empty(), &mut data)
        .unwrap();
    let (data, tag) = data.split_at(data.len() - GCM_TAG_LEN);
    let parts = [
        STANDARD.encode(data),
        STANDARD.encode([7u8; 12]),
        STANDARD.encode(tag),
    ];
    url_encode(&parts.join("--"))
}

fn envelope(message: &str, exp: &str, pur: &str) -> String {
    format!(r#"{{"_rails":{{"message":"{message}","exp":{exp},"pur":{pur}}}}}"#)
}

#[test]
fn metadata_envelopes() {
    let reader = gcm(RailsDigest::Sha1);
    let read = |plain: &str, now| reader.session(NAME, &seal(&reader, plain.as_bytes()), now);
    let b64 = STANDARD.encode(br#"{"user_id":3}"#);
    let pur = r#""cookie._app_session""#;
    // The same instant as the Rails vector, written with an offset.
    let offset = envelope(&b64, r#""2023-11-14T23:13:20.250+01:00""#, pur);
    assert_eq!(read(&offset, 1_700_000_000), Ok(json!({"user_id": 3})));
    assert_eq!(read(&offset, 1_700_000_001), Err(Expired));
    assert_eq!(
        read(&envelope(&b64, "null", r#""""#), NOW),
        Ok(json!({"user_id": 3}))
    );
    assert_eq!(read(&envelope(&b64, "null", "5"), NOW), Err(WrongPurpose));
    assert_eq!(
        read(&envelope(&b64, "null", r#""cookie.x""#), NOW),
        Err(WrongPurpose)
    );
    for bad in [
        envelope(&b64, "5", pur),
        envelope(&b64, r#""yesterday""#, pur),
        envelope("not base64!", "null", pur),
        r#"{"_rails":{"message":"#.to_owned(),
        "a secret that is not JSON".to_owned(),
    ] {
        let Err(Data(message)) = read(&bad, NOW) else {
            panic!("expected Data for {bad}");
        };
        assert!(
            !message.contains("secret") && !message.contains("yesterday"),
            "{message}"
        );
    }
    // No envelope: the plaintext is the value (JSON, or Marshal by its signature).
    assert_eq!(read(r#"{"user_id":3}"#, NOW), Ok(json!({"user_id": 3})));
    assert_eq!(read("\x04\x08i\x06", NOW), Ok(json!(1)));
}

#[test]
fn iso8601_as_rails_writes_it() {
    let ns = 1_000_000_000i128;
    assert_eq!(iso8601_nanos("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        iso8601_nanos("2023-11-14T22:13:20.250Z"),
        Some(1_700_000_000 * ns + 250_000_000)
    );
    assert_eq!(
        iso8601_nanos("2023-11-14T17:13:20-05:00"),
        Some(1_700_000_000 * ns)
    );
    assert_eq!(
        iso8601_nanos("2100-01-01T00:00:00.000Z"),
        Some(4_102_444_800 * ns)
    );
    assert_eq!(iso8601_nanos("1969-12-31T23:59:59.5Z"), Some(-ns / 2));
    for bad in [
        "2023-13-01T00:00:00Z",
        "2023-11-14 22:13:20Z",
        "2023-11-14T22:13:20",
        "2023-11-14T22:13:20.Z",
        "2023-11-14T22:13:20+0100",
        "2023-11-14T22:13",
        "",
    ] {
        assert_eq!(iso8601_nanos(bad), None, "{bad}");
    }
}

#[test]
fn keys_stay_out_of_debug_and_the_reader_is_shareable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RailsCookies>();
    let text = format!("{:?}", gcm(RailsDigest::Auto));
    assert!(
        text.contains("redacted") && text.contains("Aes256Gcm"),
        "{text}"
    );
    assert!(!text.contains("sign") && !text.contains("8a909d"), "{text}");
}

#[test]
fn a_previous_secret_key_base_still_opens_its_cookies() {
    use crate::config::{FieldMap, RailsResolverConfig, Secret};
    use crate::identity::Resolution;
    let config = |previous: Option<&[u8]>| RailsResolverConfig {
        secret_key_base: Secret::new("the secret_key_base after the rotation"),
        previous_keys: previous
            .map(|p| Secret::new(format!("unrelated, {}", String::from_utf8_lossy(p)))),
        digest: crate::config::RailsDigest::Auto,
        cipher: crate::config::RailsCipher::Aes256Gcm,
    };
    let fields = FieldMap {
        user_id: "/session_id".into(),
        email: None,
        name: None,
        custom: Vec::new(),
    };
    let resolver = |previous| {
        crate::identity::RailsResolver::new(
            &config(previous),
            NAME,
            fields.clone(),
            Default::default(),
        )
    };
    match resolver(Some(SECRET)).resolve_now(GCM_SHA1_JSON) {
        Resolution::User(user) => assert_eq!(user.id, "54670c0f51bfa4238205c33c0c32aad8"),
        Resolution::Anonymous => panic!("the previous key was not tried"),
    }
    assert!(matches!(
        resolver(None).resolve_now(GCM_SHA1_JSON),
        Resolution::Anonymous
    ));
}
