"""The bundled experiment configs: one Python file per experiment, each with get_config().

Installed as the package `supcon_tf.configs` (setup.py maps this folder; one copy).
`supcon-tf --config=NAME` runs one, `supcon-tf --list-configs` lists them.
"""
