"""pvae.models.MODELS: the one registry of model classes, loaded lazily by name."""

import pytest

from pvae.models import MODELS, VAE, Autoencoder, ConditionalVAE, ModelRegistry


def test_built_in_models_and_their_short_names():
    assert sorted(MODELS) == [
        "Autoencoder",
        "ConditionalVAE",
        "MixtureVAE",
        "SemiSupervisedVAE",
        "VAE",
    ]
    assert MODELS["VAE"] is VAE and MODELS["ConditionalVAE"] is ConditionalVAE
    assert MODELS.aliases == {"vae": "VAE", "cvae": "ConditionalVAE", "ae": "Autoencoder"}
    assert MODELS.resolve("ae") is Autoencoder and MODELS.resolve("Autoencoder") is Autoencoder
    assert "VAE" in MODELS and "vae" not in MODELS  # aliases are not keys


def test_entries_are_imported_only_when_read():
    registry = ModelRegistry()
    registry.register("pvae_no_such_module:Model", alias="nope")
    assert list(registry) == ["Model"] and registry.aliases == {"nope": "Model"}
    with pytest.raises(ModuleNotFoundError, match="pvae_no_such_module"):
        registry["Model"]


def test_register_a_class_and_remove_it():
    class MyVAE(VAE):
        pass

    registry = ModelRegistry()
    registry.register(MyVAE, alias="my")
    registry["Other"] = VAE
    assert registry.resolve("my") is MyVAE and registry["Other"] is VAE and len(registry) == 2
    del registry["MyVAE"]
    assert list(registry) == ["Other"] and registry.aliases == {}
    assert repr(registry) == "ModelRegistry(['Other'])"


@pytest.mark.parametrize(
    "target,kwargs,match",
    [
        ("no_colon", {}, r"`target` must be a class or a 'module:attribute' path"),
        (42, {}, r"`target` must be a class .* got 42 \(int\)"),
        (VAE, {"name": ""}, "`name` must be a non-empty string"),
        (VAE, {"alias": ""}, "`alias` must be a non-empty string"),
        (VAE, {"name": "Mine", "alias": "vae"}, "`alias` 'vae' already names 'VAE'"),
    ],
)
def test_bad_registrations_are_refused(target, kwargs, match):
    registry = ModelRegistry()
    registry.register(VAE, alias="vae")
    with pytest.raises(ValueError, match=match):
        registry.register(target, **kwargs)


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match=r"`model` must be one of 'VAE', .*'ae', got 'gan'"):
        MODELS.resolve("gan")
