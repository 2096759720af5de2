"""The rank launcher picks one process, horovodrun or srun."""

from __future__ import annotations

from boneage.launch import launch_command

CMD = ["boneage", "train", "--name", "x"]


def test_single_rank_runs_the_command_itself():
    assert launch_command(CMD, 1, 2, gpus=8, env={}) == CMD


def test_dgx_node_uses_horovodrun_one_rank_per_gpu():
    assert launch_command(CMD, 8, 2, gpus=8, env={}) == [
        "horovodrun",
        "-np",
        "8",
        "-H",
        "localhost:8",
        "--gloo",
        *CMD,
    ]
    assert launch_command(CMD, 8, 2, gpus=4, env={})[:3] == ["horovodrun", "-np", "4"]


def test_cpu_machine_caps_ranks():
    assert launch_command(CMD, 8, 2, "mpi", gpus=0, env={}) == [
        "horovodrun",
        "-np",
        "2",
        "-H",
        "localhost:2",
        "--mpi",
        *CMD,
    ]
    assert launch_command(CMD, 8, 1, gpus=0, env={}) == CMD


def test_slurm_allocation_uses_srun():
    env = {"SLURM_JOB_ID": "42", "SLURM_NTASKS": "8"}
    assert launch_command(CMD, 8, 2, gpus=8, env=env) == ["srun", "--mpi=pmix", "-n", "8", *CMD]
    small = {"SLURM_JOB_ID": "42", "SLURM_NTASKS": "1"}  # not enough tasks: stay on this node
    assert launch_command(CMD, 2, 2, gpus=0, env=small)[0] == "horovodrun"


def test_plain_mpi_ranks_are_not_capped_by_gpus():
    line = launch_command(["boneage", "predict-group"], 5, 2, gpus=0, env={}, mpi=True)
    assert line[0] == "mpirun" and line[line.index("-n") + 1] == "5"
    # The Slurm executor's MPI jobs keep SLURM_JOB_ID but drop SLURM_NTASKS.
    assert launch_command(CMD, 4, 2, gpus=0, env={"SLURM_JOB_ID": "7"}, mpi=True)[:4] == [
        "srun",
        "--mpi=pmix",
        "-n",
        "4",
    ]
    env = {"SLURM_JOB_ID": "7", "BONEAGE_SRUN_MPI": "pmi2"}
    assert launch_command(CMD, 2, 2, gpus=0, env=env, mpi=True)[1] == "--mpi=pmi2"


def test_slurm_jobs_use_the_sites_launcher():
    env = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}
    assert launch_command(CMD, 4, 2, gpus=4, env=env, launcher="mpiexec") == [
        "mpiexec",
        "-n",
        "4",
        *CMD,
    ]
    assert launch_command(CMD, 4, 2, gpus=4, env=env, launcher="")[:2] == ["srun", "--mpi=pmix"]
    assert launch_command(CMD, 4, 2, gpus=4, env={}, launcher="mpiexec")[0] == "horovodrun"


def test_one_rank_group_needs_no_mpi():
    from boneage.dispatch import SoloComm, run_group

    out = run_group(
        ["a", "b"],
        lambda s: __import__("pandas").DataFrame({"s": [s]}),
        comm=SoloComm(),
        log=lambda m: None,
    )
    assert list(out["s"]) == ["a", "b"]


def test_ranks_over_several_gpu_nodes_are_not_capped_by_one_node():
    """distributed: {ranks: 8, nodes: 2} on 4-GPU nodes starts 8 ranks, one per GPU."""
    env = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "8", "SLURM_CPUS_PER_TASK": "6"}
    line = launch_command(CMD, 8, 2, gpus=4, env=env, nodes=2)
    assert line == ["srun", "--mpi=pmix", "-n", "8", "-c", "6", *CMD]
    assert launch_command(CMD, 8, 2, gpus=4, env=env, nodes=1)[3] == "4"  # one node: 4 GPUs


def test_srun_gets_the_rules_cores_per_rank_where_the_job_step_lost_them():
    """The Slurm executor's job step keeps SLURM_JOB_ID but not SLURM_CPUS_PER_TASK: the
    rule passes its cpus_per_task, and srun gets it as -c (it wins over the environment)."""
    env = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}
    assert launch_command(CMD, 4, 2, gpus=2, env=env, nodes=2)[:4] == [
        "srun",
        "--mpi=pmix",
        "-n",
        "4",
    ]
    line = launch_command(CMD, 4, 2, gpus=2, env=env, nodes=2, cpus_per_task=2)
    assert line == ["srun", "--mpi=pmix", "-n", "4", "-c", "2", *CMD]
    env["SLURM_CPUS_PER_TASK"] = "1"
    assert launch_command(CMD, 4, 2, gpus=2, env=env, nodes=2, cpus_per_task=2)[4:6] == ["-c", "2"]
    assert launch_command(CMD, 4, 2, gpus=0, env={}, cpus_per_task=2)[:2] == ["horovodrun", "-np"]
