"""The CDK app. Never imported by runtime code; it references our code by asset path only."""
