"""The packaged recipes (this folder, installed as `rubric_arm.recipes`): `--config mini` finds
`mini.yaml` here when no file of that name exists."""
