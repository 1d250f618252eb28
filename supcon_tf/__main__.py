"""`python -m supcon_tf`: the `supcon-tf` command."""

from supcon_tf.main import run

if __name__ == "__main__":
    run()
