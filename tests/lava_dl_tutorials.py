# ruff: noqa  (verbatim copies of lava-dl notebook cells)
"""lava-dl's tutorial ``Network`` classes, copied verbatim (only renamed) from lava-nc/lava-dl
commit d825ac506eb9bb91ea2b945116fb45a40e775451:

- ``XorNetwork``: tutorials/lava/lib/dl/slayer/xor_regression/xor_regression.ipynb
- ``NmnistNetwork``: tutorials/lava/lib/dl/slayer/nmnist/train.ipynb
- ``OxfordNetwork``: tutorials/lava/lib/dl/slayer/oxford/train.ipynb
- ``PilotNetNetwork`` and ``event_rate_loss``: tutorials/lava/lib/dl/slayer/pilotnet/train.ipynb

Each class body is the notebook cell's text; the notebooks' imports are repeated here.
"""
import h5py  # used by export_hdf5
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # used by grad_flow
import torch
import torch.nn.functional as F

import lava.lib.dl.slayer as slayer



class XorNetwork(torch.nn.Module):
    """LIF network.

    A network consisting of the following topology:

    Layer
    ===============
    - BlockCubaInput
    - BlockCubaDense
    - BlockCubaDense
    - BlockCubaAffine

    """

    def __init__(self):
        """Initialize network."""
        super(XorNetwork, self).__init__()

        cuba_params = {
            "threshold": 0.1,
            "current_decay": 0.9,
            "voltage_decay": 0.9,
            "tau_grad": 1,
            "scale_grad": 1,
            "scale": 1 << 6,
            "norm": None,
            "dropout": None,
            "shared_param": True,
            "persistent_state": False,
            "requires_grad": False,
            "graded_spike": False,
        }

        width = 32

        self.blocks = torch.nn.ModuleList(
            [
                slayer.block.cuba.Input(
                    neuron_params=cuba_params, count_log=False
                ),
                slayer.block.cuba.Dense(
                    neuron_params=cuba_params,
                    in_neurons=2,
                    out_neurons=width,
                    count_log=False,
                ),
                slayer.block.cuba.Dense(
                    neuron_params=cuba_params,
                    in_neurons=width,
                    out_neurons=width,
                    count_log=False,
                ),
                slayer.block.cuba.Affine(
                    neuron_params=cuba_params,
                    in_neurons=width,
                    out_neurons=1,
                    dynamics=False,
                    count_log=False,
                ),
            ]
        )

    def forward(self, x):
        """Forward pass."""
        count = []
        for block in self.blocks:
            x = block(x)
            count.append(torch.mean(x).item())

        return x, torch.as_tensor(count)


class NmnistNetwork(torch.nn.Module):
    def __init__(self):
        super(NmnistNetwork, self).__init__()

        neuron_params = {
                'threshold'     : 1.25,
                'current_decay' : 0.25,
                'voltage_decay' : 0.03,
                'tau_grad'      : 0.03,
                'scale_grad'    : 3,
                'requires_grad' : True,     
            }
        neuron_params_drop = {**neuron_params, 'dropout' : slayer.neuron.Dropout(p=0.05),}
        
        self.blocks = torch.nn.ModuleList([
                slayer.block.cuba.Dense(neuron_params_drop, 34*34*2, 512, weight_norm=True, delay=True),
                slayer.block.cuba.Dense(neuron_params_drop, 512, 512, weight_norm=True, delay=True),
                slayer.block.cuba.Dense(neuron_params, 512, 10, weight_norm=True),
            ])
    
    def forward(self, spike):
        for block in self.blocks:
            spike = block(spike)
        return spike
    
    def grad_flow(self, path):
        # helps monitor the gradient flow
        grad = [b.synapse.grad_norm for b in self.blocks if hasattr(b, 'synapse')]

        plt.figure()
        plt.semilogy(grad)
        plt.savefig(path + 'gradFlow.png')
        plt.close()

        return grad

    def export_hdf5(self, filename):
        # network export to hdf5 format
        h = h5py.File(filename, 'w')
        layer = h.create_group('layer')
        for i, b in enumerate(self.blocks):
            b.export_hdf5(layer.create_group(f'{i}'))


class OxfordNetwork(torch.nn.Module):
    def __init__(self):
        super(OxfordNetwork, self).__init__()

        neuron_params = {
                'threshold'     : 0.1,
                'current_decay' : 1,
                'voltage_decay' : 0.1,
                'requires_grad' : True,     
            }
        
        self.blocks = torch.nn.ModuleList([
                slayer.block.cuba.Dense(neuron_params, 200, 256),
                slayer.block.cuba.Dense(neuron_params, 256, 200),
            ])
    
    def forward(self, spike):
        for block in self.blocks:
            spike = block(spike)
        return spike

    def export_hdf5(self, filename):
        # network export to hdf5 format
        h = h5py.File(filename, 'w')
        layer = h.create_group('layer')
        for i, b in enumerate(self.blocks):
            b.export_hdf5(layer.create_group(f'{i}'))


def event_rate_loss(x, max_rate=0.01):
    mean_event_rate = torch.mean(torch.abs(x))
    return F.mse_loss(F.relu(mean_event_rate - max_rate), torch.zeros_like(mean_event_rate))


class PilotNetNetwork(torch.nn.Module):
    def __init__(self):
        super(PilotNetNetwork, self).__init__()
        
        sdnn_params = { # sigma-delta neuron parameters
                'threshold'     : 0.1,    # delta unit threshold
                'tau_grad'      : 0.5,    # delta unit surrogate gradient relaxation parameter
                'scale_grad'    : 1,      # delta unit surrogate gradient scale parameter
                'requires_grad' : True,   # trainable threshold
                'shared_param'  : True,   # layer wise threshold
                'activation'    : F.relu, # activation function
            }
        sdnn_cnn_params = { # conv layer has additional mean only batch norm
                **sdnn_params,                                 # copy all sdnn_params
                'norm' : slayer.neuron.norm.MeanOnlyBatchNorm, # mean only quantized batch normalizaton
            }
        sdnn_dense_params = { # dense layers have additional dropout units enabled
                **sdnn_cnn_params,                        # copy all sdnn_cnn_params
                'dropout' : slayer.neuron.Dropout(p=0.2), # neuron dropout
            }
        
        self.blocks = torch.nn.ModuleList([# sequential network blocks 
                # delta encoding of the input
                slayer.block.sigma_delta.Input(sdnn_params), 
                # convolution layers
                slayer.block.sigma_delta.Conv(sdnn_cnn_params,  3, 24, 3, padding=0, stride=2, weight_scale=2, weight_norm=True),
                slayer.block.sigma_delta.Conv(sdnn_cnn_params, 24, 36, 3, padding=0, stride=2, weight_scale=2, weight_norm=True),
                slayer.block.sigma_delta.Conv(sdnn_cnn_params, 36, 64, 3, padding=(1, 0), stride=(2, 1), weight_scale=2, weight_norm=True),
                slayer.block.sigma_delta.Conv(sdnn_cnn_params, 64, 64, 3, padding=0, stride=1, weight_scale=2, weight_norm=True),
                # flatten layer
                slayer.block.sigma_delta.Flatten(),
                # dense layers
                slayer.block.sigma_delta.Dense(sdnn_dense_params, 64*40, 100, weight_scale=2, weight_norm=True),
                slayer.block.sigma_delta.Dense(sdnn_dense_params,   100,  50, weight_scale=2, weight_norm=True),
                slayer.block.sigma_delta.Dense(sdnn_dense_params,    50,  10, weight_scale=2, weight_norm=True),
                # linear readout with sigma decoding of output
                slayer.block.sigma_delta.Output(sdnn_dense_params,   10,   1, weight_scale=2, weight_norm=True)
            ])
        
        
    def forward(self, x):
        count = []
        event_cost = 0

        for block in self.blocks: 
            # forward computation is as simple as calling the blocks in a loop
            x = block(x)
            if hasattr(block, 'neuron'):
                event_cost += event_rate_loss(x)
                count.append(torch.sum(torch.abs((x[..., 1:]) > 0).to(x.dtype)).item())

        return x, event_cost, torch.FloatTensor(count).reshape((1, -1)).to(x.device)

    def grad_flow(self, path):
        # helps monitor the gradient flow
        grad = [b.synapse.grad_norm for b in self.blocks if hasattr(b, 'synapse')]

        plt.figure()
        plt.semilogy(grad)
        plt.savefig(path + 'gradFlow.png')
        plt.close()

        return grad
    
    def export_hdf5(self, filename):
        # network export to hdf5 format
        h = h5py.File(filename, 'w')
        layer = h.create_group('layer')
        for i, b in enumerate(self.blocks):
            b.export_hdf5(layer.create_group(f'{i}'))

