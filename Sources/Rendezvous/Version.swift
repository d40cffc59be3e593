/// The release of BrowserCloud (semantic versioning): `browsercloud --version` and `/healthz` report it.
public let browserCloudVersion = "0.5.0"
