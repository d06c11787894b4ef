"""``python -m ugmm_vision.cli``: the ``ugmm-vision`` command."""

from ugmm_vision.cli import main

if __name__ == "__main__":
    main()
