"""The parameter vocabulary: every estimator parameter name and its one meaning.

An allowlist.  ``tests/test_vocabulary.py`` fails for any parameter of a
public estimator that is not a key of :data:`VOCABULARY` (and for an entry
no estimator uses any more), so a new name is a decision made here, with its
meaning written down, not a synonym that slips in.  :data:`SYNONYMS` maps
names that other codes use (and that skdance once used) to the vocabulary
name, for the error message.  The documentation's vocabulary table is made
from these two tables by :func:`vocabulary_table`.

The design: ``doc/architecture.rst``, section ``architecture-vocabulary``.
"""

__all__ = ["SYNONYMS", "VOCABULARY", "vocabulary_table"]

#: Parameter name -> its meaning, the same in every estimator that takes it.
VOCABULARY = {
    # -- training (every torch model) ----------------------------------------
    "device": "Where a torch model trains: 'cpu', 'cuda', 'cuda:N' or 'mps'.",
    "random_state": "Seed of everything random in the fit (initialisation, "
    "shuffles, sampling); an int gives identical fits on CPU.",
    "verbose": "Show a progress bar (and, for some models, messages) when truthy.",
    "max_epochs": "Training epochs (the most, with early stopping).",
    "pretrain_epochs": "Epochs of a pretraining phase (an autoencoder before "
    "clustering).",
    "finetune_epochs": "Epochs of a fine-tuning phase.",
    "cluster_epochs": "Epochs of a clustering phase per outer iteration.",
    "em_epochs": "Epochs of the feature autoencoder per EM iteration (scGNN).",
    "gae_epochs": "Epochs of the graph autoencoder per EM iteration (scGNN).",
    "impute_epochs": "Epochs of the final imputation autoencoder (scGNN).",
    "kl_warmup_epochs": "Epochs over which the KL weight rises to 1.",
    "search_max_epochs": "Training epochs of each run of a parameter search.",
    "max_iter": "The most iterations of an iterative solver or algorithm.",
    "tol": "Convergence tolerance of an iterative solver or algorithm.",
    "batch_size": "Cells per mini-batch.",
    "learning_rate": "Initial learning rate of the optimiser.",
    "pretrain_learning_rate": "Learning rate of the pretraining phase.",
    "finetune_learning_rate": "Learning rate of the fine-tuning phase.",
    "mod2_learning_rate": "Learning rate of the second modality's network.",
    "min_learning_rate": "Floor of a decaying learning rate.",
    "learning_rate_decay": "Factor applied to the learning rate every "
    "``decay_steps`` steps.",
    "decay_steps": "Optimiser steps between learning-rate decays.",
    "weight_decay": "Weight of the L2 penalty on the weights.",
    "max_grad_norm": "Clip the gradients' total norm to this value (None: no "
    "clipping).",
    "validation_fraction": "Fraction of the training cells held out for early "
    "stopping.",
    "patience": "Epochs without improvement of the validation loss before "
    "stopping (None: no early stopping).",
    "update_interval": "Epochs between updates of the clustering target distribution.",
    "n_jobs": "Parallel jobs (joblib).",
    # -- network shape -------------------------------------------------------
    "hidden_dims": "Widths of the hidden layers (a tuple, input side first).",
    "hidden_dim": "Width of the hidden layer(s) when all have one width.",
    "decoder_dims": "Widths of the decoder's hidden layers, latent side first.",
    "graph_dims": "Widths of the graph-convolution layers, the last one the "
    "latent's (EfNST).",
    "mod2_hidden_dims": "Hidden widths of the second modality's network.",
    "mod2_decoder_dims": "Decoder widths of the second modality.",
    "head_dims": "Leading embedding dimensions read by the auxiliary heads "
    "(scMoGNN v2).",
    "latent_dim": "Width of the latent space (the embedding).",
    "latent_dims": "Widths of the latent layers (scDSC's tuple).",
    "adj_dim": "Width of the projection fed to the inner-product adjacency "
    "decoder (scTAG).",
    "discriminator_dim": "Hidden width of the latent discriminator.",
    "n_layers": "Number of graph layers.",
    "hops": "Hops of each TAGConv layer.",
    "dropout": "Dropout rate.",
    "mask_rate": "Fraction of the input values set to zero at every training "
    "epoch (masking noise).",
    "edge_dropout": "Dropout rate of the edge weights.",
    "residual": "How a graph layer's input is carried to its output.",
    "output_relu": "Clip predictions at 0.",
    "noise_sigma": "Standard deviation of the Gaussian input corruption.",
    "n_latent_samples": "Latent draws per cell in the ELBO.",
    "learn_prior": "Learn the scale of the prior.",
    "variant": "Which published version of the model (scMoGNN v1 or v2).",
    "combination": "How the modalities form the joint code (scMVAE).",
    "first_modality": "Which modality's network is trained first (DCCA).",
    "embedding": "What ``transform`` returns (DCCA).",
    "decomposition": "How a modality is reduced (JAE).",
    # -- likelihoods and losses ---------------------------------------------
    "mod1_likelihood": "Distribution of the first modality (a name of "
    "skdance.nn.LIKELIHOODS, or 'auto').",
    "mod2_likelihood": "Distribution of the second modality (a name of "
    "skdance.nn.LIKELIHOODS, or 'auto').",
    "adjacency_loss": "How the adjacency reconstruction is scored ('dense' "
    "or 'sampled').",
    "attention_loss": "Distance between the student's and the teacher's codes (DCCA).",
    "distance": "Distance between latent codes.",
    "adjacency_weight": "Weight of the adjacency reconstruction loss.",
    "adversarial_weight": "Weight of the adversarial losses.",
    "autoencoder_weight": "Weight of the autoencoder layers in the GCN's inputs "
    "(scDSC).",
    "batch_weight": "Weight of the batch-prediction loss.",
    "cannot_link_weight": "Weight of the cannot-link constraint loss.",
    "must_link_weight": "Weight of the must-link constraint loss.",
    "cell_cycle_weight": "Weight of the cell-cycle loss.",
    "cell_type_weight": "Weight of the cell-type loss.",
    "celltype_regularization_weight": "Weight of the cell-type regulariser.",
    "cluster_weight": "Weight of the clustering (KL) loss.",
    "gcn_weight": "Weight of the GCN head's KL loss (scDSC).",
    "graph_regularization_weight": "Weight of the graph regulariser.",
    "initial_graph_weight": "Weight of the first graph when graphs are compared "
    "between iterations (scGNN).",
    "kl_weight": "Weight of the KL term.",
    "link_weight": "Weight of the feature links in the feature update.",
    "mod1_attention_weight": "Weight of the attention loss of the first "
    "modality's network (DCCA).",
    "mod2_attention_weight": "Weight of the attention loss of the second "
    "modality's network (DCCA).",
    "mod1_weight": "Weight of the first modality's reconstruction loss.",
    "mod2_loss_weight": "Weight of the losses on the second modality.",
    "mse_weight": "Weight of the expression MSE term.",
    "pairing_weight": "Weight of the loss on the latents of paired cells.",
    "pruned_graph_weight": "Weight of the cell-type-aware pruned network (STAGATE).",
    "reconstruction_weight": "Weight of the reconstruction loss.",
    "regulatory_signal_weight": "Weight of the reconstruction error weighted by "
    "the regulatory signals (scGNN's TRS).",
    "translation_weight": "Weight of the translation losses.",
    "zinb_weight": "Weight of the ZINB negative log-likelihood.",
    # -- graphs ---------------------------------------------------------------
    "graph": "A skdance.graph builder of the cell (expression) graph the model uses.",
    "spatial_graph": "A skdance.graph builder of the spatial network of the "
    "spots, built from their coordinates.",
    "feature_graph": "A builder of the feature-feature links.",
    "n_neighbors": "Neighbours per cell of a neighbour graph.",
    "n_extended": "The kernel is evaluated on n_extended * n_neighbors neighbours.",
    "metric": "Distance of the neighbour search (scikit-learn's metrics).",
    "mode": "Edge weights of a neighbour graph.",
    "symmetrize": "Make the graph undirected.",
    "prune": "Pruning rule of a neighbour graph.",
    "n_trees": "Number of trees (isolation forests, random forests).",
    "decay": "Kernel exponent of the adaptive kernel.",
    "radius": "Distance threshold of a radius graph, in coordinate units.",
    "min_neighbors": "Link every spot to at least this many nearest spots.",
    "length_scale": "Width of a Gaussian kernel on coordinates.",
    "p": "Target mean neighbour weight of a spot, for the length-scale search.",
    "local_scaling": "Divide distances by the local spot spacing.",
    "min_weight": "Drop edge weights below this value.",
    "search_steps": "Bisection steps of a parameter search.",
    "self_loops": "Add self loops on every node.",
    "weight": "Edge weight of a cell-gene graph.",
    "edge_norm": "Rescale each cell's gene-edge weights to mean 1.",
    "threshold": "Minimum absolute correlation for an edge.",
    "weighted": "Weight edges by their correlation.",
    "gene_sets": "Gene sets for the feature links.",
    "batch_key": "``obs`` column of the batch labels of an AnnData.",
    "spatial_key": "``obsm`` key of the coordinates of an AnnData.",
    "morphology_key": "``obsm`` key of the per-spot morphology features of an AnnData.",
    "mudata_mods": "The two modalities read from a MuData: (mod1, mod2).",
    # -- clustering ----------------------------------------------------------
    "n_clusters": "Number of clusters (or domains).",
    "alpha": "Degrees of freedom of the DEC Student-t kernel.",
    "resolution": "Resolution of the modularity.",
    "search_resolution": "Search the resolution that gives n_clusters.",
    "search_start": "First resolution of the search.",
    "search_step": "First step of the search.",
    "search_max_runs": "Steps of the search before it gives up.",
    "cluster_method": "How the embedding is clustered.",
    "covariance_type": "Covariance of a Gaussian mixture.",
    "init": "Initial clustering.",
    "init_spatial": "Initial clustering on the convolved features (SpaGCN).",
    "refine": "Refine the domains by their spatial neighbourhood.",
    "refine_shape": "Refinement neighbourhood: 6 spots (Visium) or 4 (ST).",
    "pruning_resolution": "Louvain resolution of the pre-clustering (STAGATE).",
    "n_pairs": "Number of constraint pairs drawn (scDCC).",
    "graph_tol": "Convergence threshold of the graph change ratio (scGNN).",
    "celltype_tol": "Convergence threshold of the clusters' ARI (scGNN).",
    "localization_eps": "Linking distance of the localisation, in spot "
    "spacings (stLearn).",
    "weights": "Which weighting matrix stLearn's SME normalisation uses.",
    "n_sme_neighbors": "Weighted neighbours each spot keeps in stLearn's SME "
    "step, itself included (applied to the product of proximity, expression "
    "correlation and morphology, not to the spatial network alone).",
    "augment_radius": "Radius of the neighbourhood whose spots augment a spot's "
    "expression, in spot spacings (EfNST).",
    "n_augment_neighbors": "Neighbours whose expression augments each spot's, "
    "the spot itself excluded (EfNST).",
    "augment_weight": "Weight of the neighbours' weighted expression added to a "
    "spot's own (EfNST).",
    # -- histology images ----------------------------------------------------
    "image_encoder": "Torch module (or callable) mapping a batch of image tiles "
    "to features.",
    "image_encoder_weights": "Weights (a state dict or its file) of the default "
    "image encoder.",
    "image_scale": "Factor from the spot coordinates to the image's pixels.",
    "tile_size": "Side of the square image tile cut around each spot, in image pixels.",
    "encoder_input_size": "Side in pixels the image tiles are resized to for the "
    "image encoder.",
    "n_image_components": "Principal components of the image features.",
    # -- preprocessing and features -----------------------------------------
    "n_components": "Number of components of a decomposition (PCA, SVD, CCA).",
    "n_lsi_components": "LSI components per modality.",
    "n_svd_components": "Truncated-SVD components per modality, before a "
    "model's own n_components (CCAMatcher).",
    "n_block_components": "Components of each block's own reduction before the "
    "joint PCA (JointPCA).",
    "svd_components": "SVD dimensions per modality (JAE).",
    "n_similarity_components": "Expression principal components of the "
    "similarity factor (stLearn, EfNST).",
    "n_graph_components": "Leading components the expression graph is built on "
    "(of a model's n_components).",
    "n_cc": "Canonical correlation dimensions (DSTG).",
    "n_top_genes": "Number of genes kept.",
    "n_top_gene_pairs": "Gene pairs kept per cell type.",
    "flavor": "Method of highly variable gene selection.",
    "n_bins": "Number of mean bins.",
    "span": "Fraction of genes in each loess fit.",
    "min_mean": "Lower mean cut-off of highly variable genes.",
    "max_mean": "Upper mean cut-off of highly variable genes.",
    "min_disp": "Lower dispersion cut-off of highly variable genes.",
    "max_disp": "Upper dispersion cut-off of highly variable genes.",
    "log_normalize": "Log-normalise counts before computing dispersions.",
    "target_sum": "Per-cell total of a normalisation.",
    "exclude_highly_expressed": "Leave out highly expressed genes when "
    "computing totals.",
    "max_fraction": "Share of a cell's total that makes a gene highly expressed.",
    "base": "Logarithm base.",
    "max_value": "Upper clip of standardised values.",
    "zero_center": "Subtract the gene mean.",
    "exclude_gene_prefixes": "Drop genes whose names start with these.",
    "min_cells": "Keep genes detected in at least this many cells.",
    "min_counts": "Keep genes with at least this many counts over the training cells.",
    "filter_genes": "Apply the model's gene filters.",
    "normalize": "Apply the model's own normalisation of the input.",
    "log_input": "The modalities are log values.",
    "genes": "Target gene list.",
    "fill_value": "Value of target genes absent from the input.",
    "min_overlap": "Smallest accepted fraction of target genes present.",
    "feature_fraction": "Fraction of the features in each training sub-graph.",
    "cell_cycle_genes": "S-phase and G2/M-phase genes for cell-cycle scores.",
    "n_features_mod1": "Columns of the first modality when X is [mod1 | mod2].",
    "mod2": "Kind of the second block (JointPCA).",
    "modalities": "Which blocks the embedding uses (JointPCA).",
    # -- annotation -----------------------------------------------------------
    "C": "Inverse regularisation strength.",
    "class_weight": "Weights of the classes.",
    "kernel": "Kernel of a support vector machine.",
    "gamma": "Kernel coefficient of a support vector machine.",
    "balance_cell_type": "Sample rare cell types more often.",
    "batch_number": "Mini-batches per epoch.",
    "feature_selection": "Two-pass training on the top genes of every class.",
    "majority_voting": "Refine predictions by majority voting over an over-clustering.",
    "over_clustering_resolution": "Leiden resolution of the over-clustering.",
    "min_prop": "Minimum share of the dominant type for a vote or a cell type "
    "to count.",
    "mini_batch": "Mini-batch SGD.",
    "use_sgd": "Train with SGD instead of L-BFGS.",
    "n_rand": "Shuffled profiles in the 'rand' class.",
    "stratify": "Balance classes in each bootstrap sample.",
    "min_cells_per_type": "Cell types with fewer training cells are left out of "
    "the fit and never predicted.",
    "propagation_steps": "Rounds of propagation of a per-cell score over the "
    "cell graph (scHeteroNet's novelty score).",
    "propagation_alpha": "Share of a cell's own score kept in each propagation "
    "round (the rest is its neighbours' mean).",
    # -- imputation -----------------------------------------------------------
    "min_vmr": "Minimum variance-to-mean ratio of an imputed gene.",
    "n_targets_per_network": "Target genes each DeepImpute sub-network predicts.",
    "n_predictors_per_target": "Most correlated input genes (predictors) taken "
    "per target gene (DeepImpute).",
    "n_candidate_predictors": "Genes the predictors are chosen from, those of "
    "highest coefficient of variation (DeepImpute; None: all).",
    "policy": "How predictions and observed values are combined.",
    "post_threshold": "Imputed values below it are set to 0.",
    "t": "Diffusion time (MAGIC).",
    # -- deconvolution --------------------------------------------------------
    "cells_per_spot": "Cells mixed into a pseudo-spot.",
    "n_pseudo_spots": "Pseudo-spots generated from the reference.",
    "max_types_per_spot": "Most cell types mixed into a pseudo-spot.",
    "n_cells_per_type": "Reference cells per type.",
    "n_markers": "Marker genes per type.",
    "min_auc": "Smallest AUC of a marker gene.",
    "profile": "How a type's profile summarises its cells.",
    "fold_change": "Marker threshold (log scale).",
    "phis": "Spatial correlations tried (CARD).",
    "sigma": "Kernel bandwidth on the coordinates (CARD).",
    # -- multimodal matching --------------------------------------------------
    "n_partners": "Candidate partners kept per cell.",
    "bipartite_matching": "Post-process matches into a one-to-one assignment.",
    "logit_scale": "Scale of the cosine similarities.",
    "temperature": "Softmax temperature on the similarities.",
    "threshold_quantile": "Quantile of the post-processing threshold.",
    "n_cycles": "Number of teaching cycles (DCCA).",
}

#: Names other codes use (or skdance once used) -> the vocabulary name.
SYNONYMS = {
    "knn": "graph (a skdance.graph builder)",
    "epochs": "max_epochs (or pretrain_epochs)",
    "n_epochs": "max_epochs (or pretrain_epochs)",
    "num_epochs": "max_epochs (or pretrain_epochs)",
    "lr": "learning_rate",
    "l2": "weight_decay",
    "top_genes": "n_top_genes",
    "embed_dim": "latent_dim",
    "embedding_dim": "latent_dim",
    "in_feats": "n_components (a PCA size) or n_features",
    "hidden": "hidden_dim (or hidden_dims, a tuple)",
    "encoder_dims": "hidden_dims",
    "n_pcs": "n_components",
    "n_pca": "n_components",
    "graph_pcs": "n_components",
    "n_iterations": "max_iter",
    "cl_weight": "cannot_link_weight",
    "ml_weight": "must_link_weight",
    "w_adj": "adjacency_weight",
    "w_zinb": "zinb_weight",
    "w_cluster": "cluster_weight",
    "w_bce": "cluster_weight",
    "w_gcn": "gcn_weight",
    "w_rec": "reconstruction_weight",
    "sub_outputdim": "n_targets_per_network",
    "ntop": "n_predictors_per_target",
    "n_pred": "n_candidate_predictors",
    "trs_weight": "regulatory_signal_weight",
    "lr_decay": "learning_rate_decay",
    "use_gpu": "device",
    "cuda": "device",
}


def vocabulary_table(users=None):
    """Return the vocabulary as a reStructuredText list-table.

    Parameters
    ----------
    users : dict of str to list of str, default=None
        Parameter name -> the estimators taking it, shown in a third column.

    Returns
    -------
    table : str
        One row per name, sorted, with its meaning (and users).

    Examples
    --------
    >>> from skdance.utils._vocabulary import vocabulary_table
    >>> vocabulary_table().splitlines()[0]
    '.. list-table::'
    """
    header = ["name", "meaning"] + (["used by"] if users is not None else [])
    lines = [".. list-table::", "   :header-rows: 1", ""]
    rows = [header]
    for name in sorted(VOCABULARY, key=str.lower):
        row = [f"``{name}``", VOCABULARY[name]]
        if users is not None:
            row.append(", ".join(sorted(users.get(name, ()))))
        rows.append(row)
    for row in rows:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"
