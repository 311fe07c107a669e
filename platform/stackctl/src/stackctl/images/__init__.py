"""The stack's images: where every reference is pinned (`references`), how the project's images
are built from platform/images/Dockerfile (`build`), and the stand-ins built from this machine's
Debian sources where a registry is out of reach (`standins`)."""
