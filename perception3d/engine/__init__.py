"""Running training and testing: the atomic checkpoint backend and the checks the tools make at the door."""
from .file_backend import AtomicLocalBackend
from .launch import (UserError, build_runner, check_checkpoint, check_config, check_nuscenes_root,
                     find_resume_checkpoint, load_checkpoint_file, load_config, require_writable_dir,
                     scale_schedule_lr, set_epochs)

__all__ = ["AtomicLocalBackend", "UserError", "build_runner", "check_checkpoint", "check_config",
           "check_nuscenes_root", "find_resume_checkpoint", "load_checkpoint_file", "load_config",
           "require_writable_dir", "scale_schedule_lr", "set_epochs"]
