"""Process supervision shared by `voxstack up` (prod) and `voxstack dev`: no watcher, no debugger here."""
