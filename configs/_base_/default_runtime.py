# Runtime shared by every config: perception3d's registries, logging every 50 iterations (loss, lr, ETA), a
# checkpoint per epoch written atomically (write, then rename) and the best one by NDS, text + tensorboard logs.
default_scope = "perception3d"
custom_imports = dict(imports=["perception3d.engine"], allow_failed_imports=False)  # the atomic_local backend
default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=3, save_best="NuScenes/NDS", rule="greater",
                    backend_args=dict(backend="atomic_local")),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
               dist_cfg=dict(backend="nccl"))
log_processor = dict(type="LogProcessor", window_size=50, by_epoch=True)
log_level = "INFO"
load_from = None
resume = False
visualizer = dict(type="LidarVisualizer", vis_backends=[dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")])
