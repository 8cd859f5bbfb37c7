"""keras_instagan.pth: `.pth` state dicts read without PyTorch, equal to `torch.load`, code never run."""

import os
import pickle
import zipfile

import numpy as np
import pytest

from keras_instagan.pth import LEGACY_MAGIC, UnsafeCheckpointError, read_state_dict


class Payload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def legacy_file(path, obj):
    """The layout of PyTorch's legacy format: magic number, protocol, system info, the object."""
    with open(path, "wb") as f:
        for part in (LEGACY_MAGIC, 1001, {"little_endian": True}, obj, []):
            pickle.dump(part, f, protocol=2)


def zip_file(path, obj):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))


@pytest.mark.parametrize("write", [legacy_file, zip_file])
def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path, write):
    marker = tmp_path / "executed"
    write(tmp_path / "evil.pth", {"w": Payload(marker)})
    with pytest.raises(
        UnsafeCheckpointError, match=r"evil.pth: refused: the pickle asks for (posix|os)\.system"
    ):
        read_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


def test_what_is_not_a_state_dict_is_refused(tmp_path):
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UnsafeCheckpointError, match="noise.pth: refused: neither a zip archive nor a legacy"):
        read_state_dict(noise)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(UnsafeCheckpointError, match="without one data.pkl"):
        read_state_dict(tmp_path / "other.zip")
    legacy_file(tmp_path / "list.pth", [1, 2])
    with pytest.raises(UnsafeCheckpointError, match="expected a state dict of tensors, found a list"):
        read_state_dict(tmp_path / "list.pth")


def test_equal_to_torch_load_in_both_formats_and_after_conversion(tmp_path):
    torch = pytest.importorskip("torch")
    from keras_instagan import convert, torch_reference

    torch.manual_seed(0)
    generator = torch_reference.ResnetSetGenerator(4, 2).state_dict()
    extra = {"strided": torch.arange(24.0).reshape(4, 6)[:, ::2], "int": torch.arange(5),
             "half": torch.ones(3, dtype=torch.float16), "scalar": torch.tensor(2.5)}  # fmt: skip
    path = tmp_path / "g.pth"
    for legacy in (False, True):
        torch.save({**generator, **extra}, path, _use_new_zipfile_serialization=not legacy)
        ours = read_state_dict(path)
        reference = {k: v.contiguous().numpy() for k, v in torch.load(path, weights_only=True).items()}
        assert list(ours) == list(reference)
        for key, value in reference.items():
            assert ours[key].dtype == value.dtype and ours[key].shape == value.shape, key
            assert ours[key].tobytes() == value.tobytes(), key
        torch.save(generator, path, _use_new_zipfile_serialization=not legacy)
        without = convert.generator_from_state_dict(read_state_dict(path)).get_weights()
        with_torch = {k: v.numpy() for k, v in torch.load(path, weights_only=True).items()}
        converted = convert.generator_from_state_dict(with_torch).get_weights()
        assert all(a.tobytes() == b.tobytes() for a, b in zip(without, converted))

    marker = tmp_path / "executed"
    torch.save({"w": Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(pickle.UnpicklingError):  # refused by PyTorch's reader too
        torch.load(tmp_path / "evil.pth", weights_only=True)
    with pytest.raises(UnsafeCheckpointError, match="asks for"):
        read_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()
