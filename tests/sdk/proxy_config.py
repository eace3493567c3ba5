"""The official SDK's proxy_config helpers against the local backend: a config made with
`proxy_config`, `aws_auth`, `gcp_auth`, `workspace_secret` and `opaque_secret` (plus a header rule as a
plain dict) is accepted by `create_sandbox`, and the sandbox is left running for the test
to drive.

Environment: LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, SNAPSHOT_ID, AWS_SECRET (the opaque
secret access key). Prints the sandbox's name."""

import os

from langsmith.sandbox import (
    SandboxClient,
    aws_auth,
    gcp_auth,
    opaque_secret,
    proxy_config,
    workspace_secret,
)


def main() -> int:
    config = proxy_config(
        rules=[
            aws_auth(
                access_key_id=workspace_secret("AWS_ACCESS_KEY_ID"),
                secret_access_key=opaque_secret(os.environ["AWS_SECRET"]),
                env_vars={"AWS_REGION": "us-east-1"},
            ),
            gcp_auth(
                service_account_json=workspace_secret("GCP_SERVICE_ACCOUNT"),
                scopes=["https://www.googleapis.com/auth/devstorage.read_only"],
            ),
            {
                "name": "model",
                "match_hosts": ["api.example.test"],
                "headers": [
                    {
                        "name": "Authorization",
                        "type": "workspace_secret",
                        "value": "Bearer {MODEL_KEY}",
                    }
                ],
            },
        ],
        access_control={
            "allow_list": ["api.example.test", "*.amazonaws.com", "*.googleapis.com"]
        },
    )
    client = SandboxClient()
    sb = client.create_sandbox(
        snapshot_id=os.environ["SNAPSHOT_ID"],
        name="sdk-proxy",
        proxy_config=config,
        timeout=300,
    )
    print(sb.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
