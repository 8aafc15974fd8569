//! Where a workspace is hosted (docs/intercom.md §4), and the hosts its Messenger loads
//! from and talks to, per region, as Intercom documents them for Content-Security-Policy
//! (docs/intercom.md §6).

/// Intercom hosting region (docs/intercom.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// United States.
    Us,
    /// European Union.
    Eu,
    /// Australia.
    Au,
}

impl Region {
    /// The name `intercom.region` takes: `us`, `eu` or `au`.
    pub fn name(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
            Region::Au => "au",
        }
    }

    /// The Messenger `api_base` for this region.
    pub fn api_base(self) -> &'static str {
        match self {
            Region::Us => "https://api-iam.intercom.io",
            Region::Eu => "https://api-iam.eu.intercom.io",
            Region::Au => "https://api-iam.au.intercom.io",
        }
    }
}

/// Intercom's CSP sources for one region, plus the widget's own origin.
#[derive(Debug, Clone)]
pub struct IntercomHosts {
    /// `script-src`.
    pub script: Vec<String>,
    /// `connect-src`.
    pub connect: Vec<String>,
    /// `img-src`.
    pub img: Vec<String>,
    /// `font-src`.
    pub font: Vec<String>,
    /// `media-src`.
    pub media: Vec<String>,
    /// `frame-src` (and `child-src`).
    pub frame: Vec<String>,
    /// `form-action`.
    pub form_action: Vec<String>,
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

impl IntercomHosts {
    /// The documented hosts for `region`; `widget_origin` (e.g. a self-hosted widget) is
    /// allowed for scripts too.
    pub fn new(region: Region, widget_origin: Option<&str>) -> Self {
        let (regional_cdn, regional_img, regional_socket, api_iam): (
            &[&str],
            &[&str],
            &[&str],
            &str,
        ) = match region {
            Region::Us => (
                &[
                    "https://uploads.intercomcdn.com",
                    "https://downloads.intercomcdn.com",
                ],
                &[
                    "https://static.intercomassets.com",
                    "https://messenger-apps.intercom.io",
                    "https://*.intercom-attachments-1.com",
                    "https://*.intercom-attachments-2.com",
                    "https://*.intercom-attachments-3.com",
                    "https://*.intercom-attachments-4.com",
                    "https://*.intercom-attachments-5.com",
                    "https://*.intercom-attachments-6.com",
                    "https://*.intercom-attachments-7.com",
                    "https://*.intercom-attachments-8.com",
                    "https://*.intercom-attachments-9.com",
                ],
                &[],
                "https://api-iam.intercom.io",
            ),
            Region::Eu => (
                &[
                    "https://uploads.intercomcdn.eu",
                    "https://uploads.eu.intercomcdn.com",
                    "https://downloads.intercomcdn.eu",
                ],
                &[
                    "https://static.intercomassets.eu",
                    "https://messenger-apps.eu.intercom.io",
                    "https://*.intercom-attachments.eu",
                ],
                &[
                    "https://nexus-europe-websocket.intercom.io",
                    "wss://nexus-europe-websocket.intercom.io",
                ],
                "https://api-iam.eu.intercom.io",
            ),
            Region::Au => (
                &[
                    "https://uploads.au.intercomcdn.com",
                    "https://downloads.au.intercomcdn.com",
                ],
                &[
                    "https://static.au.intercomassets.com",
                    "https://messenger-apps.au.intercom.io",
                    "https://*.au.intercom-attachments.com",
                ],
                &[
                    "https://nexus-australia-websocket.intercom.io",
                    "wss://nexus-australia-websocket.intercom.io",
                ],
                "https://api-iam.au.intercom.io",
            ),
        };
        let mut script = owned(&[
            "https://app.intercom.io",
            "https://widget.intercom.io",
            "https://js.intercomcdn.com",
        ]);
        let mut connect = owned(&[
            "https://via.intercom.io",
            "https://api.intercom.io",
            "https://api.eu.intercom.io",
            "https://api.au.intercom.io",
            api_iam,
            "https://api-ping.intercom.io",
            "https://*.intercom-messenger.com",
            "wss://*.intercom-messenger.com",
            "https://nexus-websocket-a.intercom.io",
            "wss://nexus-websocket-a.intercom.io",
            "https://nexus-websocket-b.intercom.io",
            "wss://nexus-websocket-b.intercom.io",
            "https://uploads.intercomusercontent.com",
        ]);
        connect.extend(owned(regional_socket));
        connect.extend(owned(regional_cdn));
        // A self-hosted (or stand-in) widget is loaded from, and talks to, its own origin.
        if let Some(origin) = widget_origin {
            for list in [&mut script, &mut connect] {
                if !list.iter().any(|host| host.eq_ignore_ascii_case(origin)) {
                    list.push(origin.to_string());
                }
            }
        }
        let mut img = owned(&[
            "blob:",
            "data:",
            "https://js.intercomcdn.com",
            "https://uploads.intercomusercontent.com",
            "https://gifs.intercomcdn.com",
            "https://video-messages.intercomcdn.com",
        ]);
        img.extend(owned(regional_cdn));
        img.extend(owned(regional_img));
        let mut media = owned(&["https://js.intercomcdn.com"]);
        media.extend(owned(regional_cdn));
        IntercomHosts {
            script,
            connect,
            img,
            font: owned(&[
                "https://js.intercomcdn.com",
                "https://fonts.intercomcdn.com",
            ]),
            media,
            frame: owned(&[
                "https://intercom-sheets.com",
                "https://www.intercom-reporting.com",
                "https://www.youtube.com",
                "https://player.vimeo.com",
                "https://fast.wistia.net",
            ]),
            form_action: owned(&["https://intercom.help", api_iam]),
        }
    }
}
